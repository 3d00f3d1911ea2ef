"""Shared plumbing for reward functions with TRL's calling convention.

``fn(prompts, completions, completion_ids, **columns) -> list[float | None]``: one value per completion,
None where the reward does not apply (TRL turns it into NaN and ignores it). ``completions`` are strings or
conversational lists of messages; ``completion_ids`` are token ids, the only length measure used here;
``columns`` are the dataset columns TRL repeats per completion (``answer``, ``problem_id``, ...) plus
TRL's extras (``trainer_state``, ``log_metric``, ...), which are ignored.

Rewards are frozen pydantic models (picklable, comparable, a readable repr; unknown or badly typed
parameters are errors naming them) with a ``name`` (the registry key, also ``__name__`` for TRL's logs). A
recipe's ``rewards`` entries are validated against these classes (``reasoner.config``: ``params`` typed by the
class of ``name``). Group-based rewards find each prompt's group from a prompt-id column (``group_column``), else
contiguous blocks of ``num_generations``, else contiguous runs of identical prompts (TRL repeats each prompt
``num_generations`` times in a row). Caveat: in multi-process TRL runs a group can be split across
processes; group statistics are then computed on the local part only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from reasoner.verify import DEFAULT_TIMEOUT_S, GraderMode, grade_many

Columns = Mapping[str, Any]
_THINKING_KEYS = ("reasoning_content", "reasoning", "thinking")


def completion_text(completion: Any) -> str:
    """The text of one completion: a string, or a list of messages (assistant contents joined). A message's
    separate reasoning field (``reasoning_content``/``thinking``) is wrapped in ``<think>...</think>``."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    parts: list[str] = []
    for message in completion:
        if not isinstance(message, Mapping):
            parts.append(str(message))
            continue
        if message.get("role", "assistant") != "assistant":
            continue
        thinking = next((message[k] for k in _THINKING_KEYS if message.get(k)), None)
        if thinking:
            parts.append(f"<think>{thinking}</think>")
        parts.append(_content_text(message.get("content")))
    return "".join(parts)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):  # content blocks: [{"type": "text", "text": ...}, ...]
        return "".join(str(b.get("text", "")) if isinstance(b, Mapping) else str(b) for b in content)
    return str(content)


class RewardFunction(BaseModel):
    """Base of all rewards: TRL's calling convention; subclasses set ``name`` and implement ``score``.

    Parameters are strict (an int is not a bool, 2.5 is not a length in tokens) and finite."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=True, allow_inf_nan=False, use_attribute_docstrings=True
    )
    name: ClassVar[str] = "reward"
    """The reward's name in ``rewards.REWARDS`` and in recipes."""

    @property
    def __name__(self) -> str:  # TRL logs a reward function under its ``__name__``
        return self.name

    def __call__(
        self,
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] | None = None,
        completion_ids: Sequence[Sequence[int]] | None = None,
        **columns: Any,
    ) -> list[float | None]:
        if completions is None:
            raise ValueError(f"{self.__name__}: completions are required")
        completions = list(completions)
        out = self.score(prompts, completions, completion_ids, columns)
        if len(out) != len(completions):
            raise RuntimeError(
                f"{self.__name__}: produced {len(out)} rewards for {len(completions)} completions"
            )
        return out

    def score(
        self,
        prompts: Sequence[Any] | None,
        completions: list[Any],
        completion_ids: Sequence[Sequence[int]] | None,
        columns: Columns,
    ) -> list[float | None]:
        raise NotImplementedError

    def lengths(self, completion_ids: Sequence[Sequence[int]] | None, n: int) -> list[int]:
        """Completion lengths in tokens (never characters)."""
        if completion_ids is None:
            raise ValueError(f"{self.__name__}: completion_ids are required (lengths are counted in tokens)")
        lengths = [len(ids) for ids in completion_ids]
        if len(lengths) != n:
            raise ValueError(f"{self.__name__}: {len(lengths)} completion_ids for {n} completions")
        return lengths

    def column(self, columns: Columns, name: str, n: int) -> list[Any]:
        """A per-completion dataset column, checked for presence and length."""
        if name not in columns:
            known = ", ".join(
                sorted(k for k in columns if k not in ("trainer_state", "log_metric", "log_extra"))
            )
            raise ValueError(f"{self.__name__}: needs a {name!r} column; the batch has: {known or 'none'}")
        values = list(columns[name])
        if len(values) != n:
            raise ValueError(f"{self.__name__}: column {name!r} has {len(values)} values for {n} completions")
        return values


class GradedReward(RewardFunction):
    """A reward that needs correctness: the gold answer comes from ``answer_column`` and is graded with
    ``reasoner.verify.grade_many`` (math-verify in the worker pool, hard ``timeout`` per completion) under the
    extraction policy ``mode``."""

    answer_column: str = Field("answer", min_length=1)
    """Dataset column that holds the gold answer. Default ``answer``."""
    timeout: float = Field(DEFAULT_TIMEOUT_S, gt=0)
    """Hard limit (seconds) on verifying one completion; a timeout counts as incorrect. Default: the verifier's
    (``reasoner.verify.DEFAULT_TIMEOUT_S``, 5)."""
    benchmark: str | None = None
    """Gold format for ``reasoner.verify.normalize_gold`` (``gsm8k``, ``amc23``, ...); None guesses."""
    mode: GraderMode = "strict"
    """Answer extraction policy (``reasoner.verify.GRADER_MODES``). Default ``strict``: only an explicitly
    marked final answer (``\\boxed{}``, "final answer is ...", ``#### N``) counts, so a policy cannot earn
    reward from numbers scattered in its text; ``lenient`` adds math-verify's own extraction, as evaluation does."""

    def correctness(self, completions: list[Any], columns: Columns) -> list[bool | None]:
        """Per completion: True/False, or None when its gold answer is missing."""
        golds = self.column(columns, self.answer_column, len(completions))
        texts = [completion_text(c) for c in completions]
        verdicts = grade_many(golds, texts, timeout=self.timeout, benchmark=self.benchmark, mode=self.mode)
        return [None if _missing(g) else v.correct for g, v in zip(golds, verdicts, strict=True)]


def _missing(gold: Any) -> bool:
    return gold is None or (isinstance(gold, str) and not gold.strip())


class GroupReward(GradedReward):
    """A graded reward computed from statistics of each prompt's group of samples."""

    group_column: str | None = "problem_id"
    """Column identifying the prompt of each completion; used when present. Default ``problem_id``."""
    num_generations: int | None = Field(None, ge=1)
    """Else: the batch is contiguous blocks of this many samples per prompt (TRL's ``num_generations``)."""

    def groups(self, prompts: Sequence[Any] | None, n: int, columns: Columns) -> list[list[int]]:
        """Indices of the completions of each prompt (see the module docstring for the rules)."""
        if self.group_column and self.group_column in columns:
            return _runs_by_key(self.column(columns, self.group_column, n), contiguous=False)
        if self.num_generations is not None:
            g = self.num_generations
            if n % g:
                raise ValueError(
                    f"{self.name}: num_generations must be a divisor of the batch size {n}, got {g}"
                )
            return [list(range(i, i + g)) for i in range(0, n, g)]
        if prompts is None or len(prompts) != n:
            raise ValueError(
                f"{self.__name__}: cannot find groups: no {self.group_column!r} column, no num_generations, "
                "and no prompts to group by"
            )
        return _runs_by_key(list(prompts), contiguous=True)


def _runs_by_key(keys: list[Any], *, contiguous: bool) -> list[list[int]]:
    """Group indices by key: all equal keys together, or only contiguous runs of equal keys."""
    groups: dict[Any, list[int]] = {}
    runs: list[list[int]] = []
    previous: Any = object()
    for i, key in enumerate(keys):
        k = key if isinstance(key, (str, int, float, tuple, type(None))) else repr(key)
        if contiguous:
            if not runs or k != previous:
                runs.append([])
            runs[-1].append(i)
            previous = k
        else:
            groups.setdefault(k, []).append(i)
    return runs if contiguous else list(groups.values())
