"""The worker-process side of the verifier pool: math-verify parsing and equivalence, and the zygote that
forks warm workers.

math-verify's own timeouts use ``signal.alarm``, which fails off the main thread; inside a worker they are
switched off (``parsing_timeout=None``, ``timeout_seconds=None``) and the parent enforces a hard timeout by
killing the worker. Every task returns ``(status, value)``; nothing raises back to the parent.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

_GOLD_CACHE_SIZE = 512
_gold_cache: dict[str, list] = {}
Task = tuple[str, str, str]
"""``(kind, a, b)``:

- ``("grade", gold, answer)`` and ``("equiv", a, b)``: both strings already extracted and cleaned;
- ``("grade_text", gold, region)``: math-verify's own extraction of an answer region (the lenient policy's
  fallback), graded against the gold;
- ``("extract", region, "")``: math-verify's own extraction of an answer region, no gold;
- ``("mv_direct", gold, response)``: plain math-verify, for audits: ``verify(gold=parse("\\boxed{gold}"),
  target=parse(response))`` on the whole response.

The results are described at ``reasoner.verify.pool.Result``."""
_WARMUP: list[Task] = [
    ("grade", "1", "0.5"),
    ("grade", "\\frac{1}{2}", "0.5"),
    ("grade", "x^2+2x+1", "(x+1)^2"),
    ("grade", "[1,2)", "[1, 2)"),
    ("grade", "\\{1,2\\}", "\\{2,1\\}"),
    ("grade", "x=3", "3"),
    ("grade_text", "\\frac{1}{3}", "So the probability is $\\frac13$, about 0.33 or 1 000 / 3 000."),
]
"""Tasks run once at start-up so that the first real tasks do not pay for sympy's lazy imports."""


_PLAIN_NUMBER = re.compile(r"^-?(?:0|[1-9]\d{0,40})(?:\.\d{1,40})?$")


def _parse(text: str) -> list:
    """math-verify's parse of an extracted answer (as a boxed answer). A plain number becomes
    ``[sympy number, text]`` directly, as math-verify's own number rule builds it (``Number(text)``), without the
    cost of its LaTeX grammar or of sympy's string parser (~2 ms a call)."""
    if _PLAIN_NUMBER.match(text):
        from sympy import Float, Integer

        return [Float(text) if "." in text else Integer(int(text)), text]
    from math_verify import parse

    return parse("\\boxed{" + text + "}", parsing_timeout=None)


def _parse_gold(gold: str) -> list:
    parsed = _gold_cache.get(gold)
    if parsed is None:
        parsed = _parse(gold)
        if len(_gold_cache) >= _GOLD_CACHE_SIZE:
            _gold_cache.pop(next(iter(_gold_cache)))
        _gold_cache[gold] = parsed
    return parsed


def _has_math(parsed: list) -> bool:
    """Whether math-verify parsed anything beyond its fallback string (garbage parses to strings only)."""
    return any(not isinstance(x, str) for x in parsed)


def _equal(gold: list, target: list) -> bool:
    from math_verify import verify

    return bool(verify(gold=gold, target=target, timeout_seconds=None))


def _parse_text(text: str) -> list:
    """math-verify's own extraction from free text: ``parse`` with its default configs (LaTeX + expression,
    boxed first; https://github.com/huggingface/Math-Verify)."""
    from math_verify import parse

    return parse(text, parsing_timeout=None)


def _string_form(parsed: list) -> str | None:
    """math-verify's string form of what it extracted (``parse(...)[1]``), None when it found nothing."""
    strings = [x for x in parsed if isinstance(x, str)]
    return strings[-1] if strings else (str(parsed[0]) if parsed else None)


def _grade_free_text(parsed_gold: list, text: str, *, require_math: bool) -> tuple[str, Any]:
    """math-verify's own extraction of ``text`` compared with a parsed gold; ``require_math``: a gold with math
    against an answer without any is ``unparsable`` (the lenient grader's rule; plain math-verify has none)."""
    if not parsed_gold:
        return ("unparsable", (False, None))
    target = _parse_text(text)
    extracted = _string_form(target)
    if extracted is None:
        return ("no_answer", (False, None))
    if require_math and _has_math(parsed_gold) and not _has_math(target):
        return ("unparsable", (False, extracted))
    return ("ok", (_equal(parsed_gold, target), extracted))


def _grade_text(gold: str, region: str) -> tuple[str, Any]:
    return _grade_free_text(_parse_gold(gold), region, require_math=True)


def _mv_direct(gold: str, response: str) -> tuple[str, Any]:
    from math_verify import parse

    return _grade_free_text(
        parse("\\boxed{" + gold + "}", parsing_timeout=None), response, require_math=False
    )


def run_task(task: Task) -> tuple[str, Any]:
    """Run one task (see ``Task``); never raises (a failure is ``("error", "ExceptionName: message")``)."""
    try:
        kind, a, b = task
        if kind == "grade":
            gold, target = _parse_gold(a), _parse(b)
            if not gold:
                return ("unparsable", "gold")
            if not target or (_has_math(gold) and not _has_math(target)):
                return ("unparsable", "answer")
            return ("ok", _equal(gold, target))
        if kind == "equiv":
            pa, pb = _parse_gold(a), _parse_gold(b)
            if not pa or not pb:
                return ("unparsable", "answer")
            return ("ok", _equal(pa, pb) or _equal(pb, pa))
        if kind == "grade_text":
            return _grade_text(a, b)
        if kind == "extract":
            return ("ok", _string_form(_parse_text(a)))
        if kind == "mv_direct":
            return _mv_direct(a, b)
        return ("unparsable", f"unknown task kind {kind!r}")
    except Exception as exc:  # a verifier must never take its worker down; the parent logs and counts it
        return ("error", f"{type(exc).__name__}: {exc}"[:300])


def _limit_memory(limit_mb: int | None) -> None:
    if not limit_mb:
        return
    try:
        import resource

        limit = limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass


def _die_with_parent(expected_parent: int | None = None) -> None:
    """Linux: have the kernel SIGKILL this process when its parent (thread) exits, even mid-task."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if expected_parent is not None and os.getppid() != expected_parent:
        os._exit(0)  # the parent died before the death signal was armed


def _exit_with_parent() -> None:
    """Best effort: leave when the parent process dies, even while a task is hung."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="verify-parent-watch").start()


def serve(conn: Any, memory_limit_mb: int | None) -> None:
    """A forked worker: announce readiness, then answer task chunks, one result message per task."""
    _limit_memory(memory_limit_mb)
    _exit_with_parent()
    conn.send(("ready", os.getpid()))
    while True:
        try:
            chunk = conn.recv()
        except (EOFError, OSError):
            return
        if chunk is None:
            return
        for i, task in enumerate(chunk):
            conn.send((i, run_task(task)))


def _fork_worker(ctrl: socket.socket, memory_limit_mb: int | None) -> None:
    """Fork one worker and hand the parent's end of its socket to the pool (``SCM_RIGHTS``)."""
    ours, theirs = socket.socketpair()
    zygote = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        ours.close()
        theirs.close()
        socket.send_fds(ctrl, [struct.pack("i", -1)], [])
        return
    if pid == 0:  # the worker
        code = 0
        try:
            ctrl.close()
            ours.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _die_with_parent(expected_parent=zygote)
            serve(Connection(theirs.detach()), memory_limit_mb)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    theirs.close()
    socket.send_fds(ctrl, [struct.pack("i", pid)], [ours.fileno()])
    ours.close()


def zygote_main(argv: list[str] | None = None) -> None:
    """Entry point of the zygote process, ``argv = [CONTROL_FD, MEMORY_LIMIT_MB, POOL_PID]``.

    Imports and warms math-verify once, says ``READY``, then forks a warm worker for each ``F`` byte it reads
    on the control socket. Single-threaded, so forking is safe; exits when the pool closes the socket.
    """
    args = sys.argv[1:] if argv is None else argv
    ctrl = socket.socket(fileno=int(args[0]))
    memory_limit_mb = int(args[1]) if len(args) > 1 and int(args[1]) > 0 else None
    _die_with_parent(expected_parent=int(args[2]) if len(args) > 2 else None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    try:
        import math_verify  # noqa: F401 - a missing or broken install must fail loudly, not grade as "unparsable"

        for task in _WARMUP:  # first uses of sympy's paths are slow: pay once here, not in the first tasks
            run_task(task)
    except Exception as exc:  # reported to the pool, which raises
        ctrl.sendall(f"ERROR {type(exc).__name__}: {exc}\n".encode())
        return
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped automatically
    ctrl.sendall(b"READY\n")
    while True:
        try:
            request = ctrl.recv(1)
        except OSError:
            return
        if not request:
            return
        _fork_worker(ctrl, memory_limit_mb)
