"""Input rows, the resumable per-problem record log, and the SFT dataset that distillation writes.

Input (``load_rows``): a JSONL/JSON file, or a directory written by ``datasets.Dataset.save_to_disk`` (a
``DatasetDict`` uses its ``train`` split), with one problem per row: a question (``question``, ``problem`` or
``prompt``), a gold ``answer``, optionally an ``id`` and a reasoning ``trace``. A field holding chat messages
(a list of ``{"role", "content"}``) counts as the content of its last message, so a dataset written by
``reasoner distill`` can be read back (``--trace-field completion``).

Output directory (``RecordLog`` + ``write_dataset``): ``records.jsonl`` gets one JSON line per finished
problem as soon as it is done (a rerun skips the ids already there), ``run.json`` the settings of the run (a
rerun with different settings is an error naming the setting, unless started fresh), and the directory itself
is a ``datasets`` dataset (``save_to_disk``) in TRL's conversational prompt-completion format, which
``SFTTrainer`` trains on with the loss on the completion only::

    {"prompt": [{"role": "user", "content": "<question>\\n<instruction>"}],
     "completion": [{"role": "assistant", "content": "<reasoning and \\\\boxed{answer}>"}],
     "id": ..., "question": ..., "answer": ..., "num_tokens": ...}

plus ``stats.json``. Extra columns are dropped by the trainer (``remove_unused_columns``).

``sample_and_record`` is the resumable sample-grade-record loop the sampling distillers (shortest-correct,
TokenSkip) share; each passes the function that turns a graded batch into its records.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasoner.prompts import ANSWER_INSTRUCTION, render, user_message
from reasoner.types import Completion, Problem, SampleSpec, Verdict

if TYPE_CHECKING:
    from reasoner.engines.base import Engine

log = logging.getLogger(__name__)

RECORDS = "records.jsonl"
RUN = "run.json"
STATS = "stats.json"
QUESTION_KEYS = ("question", "problem", "prompt")
"""Fields tried, in order, for the question when ``question_key`` is not in a row."""


class DistillError(ValueError):
    """Bad input or a run directory that cannot be resumed; the message names the field or path."""


@dataclass(frozen=True)
class TraceRow:
    """One input problem and its long reasoning trace (None: the teacher writes one)."""

    problem: Problem
    trace: str | None = None


def as_text(value: Any) -> str | None:
    """A field as text: strings stay, chat messages give their last message's content, None stays None."""
    if value is None:
        return None
    if isinstance(value, list) and value and isinstance(value[-1], Mapping):
        return str(value[-1].get("content") or "")
    return str(value)


def _read(path: Path) -> list[Mapping[str, Any]]:
    if path.is_dir():
        import datasets

        try:
            data = datasets.load_from_disk(str(path))
        except FileNotFoundError as err:
            raise DistillError(f"--data {str(path)!r}: not a saved datasets directory ({err})") from None
        if isinstance(data, datasets.DatasetDict):
            if "train" not in data:
                raise DistillError(f"--data {str(path)!r}: a DatasetDict without a 'train' split")
            data = data["train"]
        return list(data)
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            try:
                return [json.loads(line) for line in f if line.strip()]
            except json.JSONDecodeError as err:
                raise DistillError(f"--data {str(path)!r}: invalid JSON line ({err})") from None
    if path.suffix == ".json":
        rows = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rows, list):
            raise DistillError(f"--data {str(path)!r}: a .json file must hold a list of rows")
        return rows
    raise DistillError(f"--data {str(path)!r}: expected a .jsonl/.json file or a save_to_disk directory")


def load_rows(
    path: str | Path,
    *,
    question_key: str = "question",
    answer_key: str = "answer",
    trace_key: str = "trace",
    id_key: str = "id",
    limit: int | None = None,
) -> list[TraceRow]:
    """Problems (and traces, where rows have them) from a file or dataset directory (module docstring)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DistillError(f"--data {str(path)!r} does not exist")
    out: list[TraceRow] = []
    for index, row in enumerate(_read(path)):
        if limit is not None and len(out) >= limit:
            break
        keys = (question_key, *[k for k in QUESTION_KEYS if k != question_key])
        question = next((as_text(row[k]) for k in keys if row.get(k)), None)
        if not question:
            raise DistillError(f"--data row {index}: no question (looked for {', '.join(keys)})")
        answer = row.get(answer_key)
        if answer is None or str(answer).strip() == "":
            raise DistillError(f"--data row {index}: no gold answer in field {answer_key!r}")
        pid = str(row[id_key]) if row.get(id_key) not in (None, "") else f"row-{index}"
        trace = as_text(row.get(trace_key))
        out.append(TraceRow(Problem(pid, question.strip(), str(answer)), trace or None))
    ids = [r.problem.id for r in out]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DistillError(f"--data: id {dup!r} occurs more than once (ids must be unique to resume)")
    if not out:
        raise DistillError(f"--data {str(path)!r}: no rows")
    return out


def sft_row(
    question: str, completion: str, *, instruction: str | None = ANSWER_INSTRUCTION, system: str | None = None
) -> dict[str, list[dict[str, str]]]:
    """A conversational prompt-completion row for TRL's SFTTrainer (the prompt as the toolkit renders it)."""
    prompt = [{"role": "system", "content": system}] if system else []
    prompt.append({"role": "user", "content": user_message(question, instruction)})
    return {"prompt": prompt, "completion": [{"role": "assistant", "content": completion}]}


def remove_outputs(out: Path) -> None:
    """Delete what a distillation run writes in ``out`` (and nothing else: ``--out`` may hold other files)."""
    if not out.is_dir():
        return
    for pattern in (RECORDS, RUN, STATS, "data-*.arrow", "dataset_info.json", "state.json"):
        for path in out.glob(pattern):
            path.unlink()


class RecordLog:
    """``records.jsonl`` + ``run.json`` in an output directory: append per problem, resume by id."""

    def __init__(self, out: str | Path, settings: Mapping[str, Any], *, fresh: bool = False):
        self.out = Path(out).expanduser()
        self.path = self.out / RECORDS
        settings = json.loads(json.dumps(dict(settings)))  # normalised, as read back from disk
        if fresh:
            remove_outputs(self.out)
        self.out.mkdir(parents=True, exist_ok=True)
        run = self.out / RUN
        if run.exists() and self.path.exists():
            old = json.loads(run.read_text(encoding="utf-8"))
            for key in sorted(set(old) | set(settings)):
                if old.get(key) != settings.get(key):
                    raise DistillError(
                        f"--out {str(self.out)!r} holds a run with {key}={old.get(key)!r}, this one has "
                        f"{key}={settings.get(key)!r}; use another --out or --fresh"
                    )
        run.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")

    def read(self) -> list[dict[str, Any]]:
        """All records so far (a torn last line from an interrupted run is ignored)."""
        if not self.path.exists():
            return []
        records = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("%s: ignoring a damaged line", self.path)
        return records

    def done_ids(self) -> set[str]:
        return {r["id"] for r in self.read()}

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record) + "\n")


def write_dataset(out: str | Path, rows: Sequence[Mapping[str, Any]], stats: Mapping[str, Any]) -> Path:
    """Save ``rows`` as a ``datasets`` dataset in ``out`` (``save_to_disk``) and ``stats`` as stats.json."""
    import datasets

    out = Path(out)
    if rows:
        datasets.Dataset.from_list(list(rows)).save_to_disk(str(out))
    else:
        log.warning("no rows to write: %s holds no dataset (see %s)", out, STATS)
    (out / STATS).write_text(json.dumps(dict(stats), indent=2) + "\n", encoding="utf-8")
    return out


MakeRecords = Callable[[Sequence[Problem], Sequence[Sequence[Completion]], Sequence[Sequence[Verdict]]], list]
"""``make(problems, groups, verdicts) -> records``: one batch's records from its samples and their verdicts."""


def sample_and_record(
    name: str,
    engine: Engine | None,
    problems: Sequence[Problem],
    spec: SampleSpec,
    records: RecordLog,
    make: MakeRecords,
    *,
    instruction: str | None = ANSWER_INSTRUCTION,
    system: str | None = None,
    batch_size: int = 8,
    on_done: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """The loop every sampling distiller runs over the problems not yet in ``records``, ``batch_size`` at a
    time: render the prompts, generate ``spec.n`` samples each, grade them, turn the batch into records with
    ``make`` and append them at once (an interrupted run resumes after the last batch), then ``on_done(k)``
    (progress bars). Returns the records of ``problems``. ``engine`` may be None when nothing is left to do."""
    from reasoner.verify import grade_many

    done = records.done_ids()
    todo = [p for p in problems if p.id not in done]
    log.info("%s: %d problems to do, %d done", name, len(todo), len(problems) - len(todo))
    if todo and engine is None:
        raise ValueError(f"{name}: {len(todo)} problems left to do and no engine")
    for lo in range(0, len(todo), batch_size):
        assert engine is not None  # refused above when there is work
        batch = todo[lo : lo + batch_size]
        prompts = [
            render(engine.tokenizer, p.question, instruction=instruction, system=system) for p in batch
        ]
        groups = engine.generate(prompts, spec)
        golds = [p.answer for p, g in zip(batch, groups, strict=True) for _ in g]
        flat = iter(grade_many(golds, [c.text for g in groups for c in g]))
        verdicts = [[next(flat) for _ in g] for g in groups]
        records.append(make(batch, groups, verdicts))
        if on_done is not None:
            on_done(len(batch))
    wanted = {p.id for p in problems}
    return [r for r in records.read() if r["id"] in wanted]
