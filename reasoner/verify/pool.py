"""A process pool for math-verify with a hard timeout per task, safe to use from threads and Ray actors.

Processes: one *zygote* (a fresh interpreter, ``python -c "...zygote_main()"``: safe with torch and threads in
the caller, like multiprocessing's "spawn", but the caller's ``__main__`` is never re-imported, so scripts need
no ``if __name__ == "__main__"`` guard) imports and warms math-verify once, then forks warm workers on request
(~10 ms each, pages shared copy-on-write) and hands their sockets to the pool. A killed worker is therefore
replaced at once. The zygote runs in its own session (terminal signals such as Ctrl-C do not reach it; with
Linux autogroup scheduling it gets its own CPU share) and, on Linux, the kernel kills the zygote when the pool's
dispatcher thread exits and each worker when the zygote exits (``PR_SET_PDEATHSIG``): nothing outlives the pool's
process, even a worker stuck inside sympy.

Threads: a single dispatcher thread in the parent owns every socket; callers only enqueue tasks and wait on
futures, so any number of threads may share the pool. Tasks travel in small chunks (one message per chunk, one
result message per task) to cut IPC overhead. Each task has its own deadline, armed when its worker starts it;
a task past its deadline gets ``timeout``, its worker is killed (SIGKILL) and replaced, and the rest of its
chunk is re-queued. A worker that dies mid-task (crash, OOM, killed from outside) is replaced and the task
retried once; a second death reports ``crash``. A dead zygote is restarted.

``get_pool()`` returns a lazily created module-level pool (re-created after a fork or a close); it is shut
down at interpreter exit. POSIX only (fork + ``SCM_RIGHTS``).
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import socket
import threading
import time
from collections import deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, cast

from reasoner.verify.procs import WorkerHandle, Zygote
from reasoner.verify.worker import Task

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0
"""Hard limit on one parse + compare, in seconds."""
BOOT_TIMEOUT_S = 120.0
"""How long the zygote may take to import and warm up math-verify before it is restarted."""
INFLIGHT_CHUNKS = 4
"""Chunks a worker may have queued at once (deadlines are still per task, armed as each task starts)."""
Result = tuple[str, Any]
"""``(status, value)`` of one task (``reasoner.verify.worker.Task``):

- ``grade`` / ``equiv``: ``("ok", bool)`` or ``("unparsable", reason)``;
- ``grade_text`` / ``mv_direct``: ``(status, (correct, extracted))`` with status ``ok``, ``no_answer`` (math-verify
  found nothing; extracted None) or ``unparsable`` (no usable gold, or an answer without math against a
  math gold), ``extracted`` being math-verify's string form of the answer (``parse(...)[1]``);
- ``extract``: ``("ok", extracted)``, the string form or None;
- any kind: ``("error", "ExceptionName: message")`` when the task raised, ``("timeout", None)`` past its hard
  limit, ``("crash", None)`` when its worker died twice (the parent logs and counts errors and crashes:
  ``reasoner.verify.batch.error_count``)."""


def default_workers() -> int:
    """``REASONER_VERIFY_WORKERS`` if set, else min(4, CPU count), at least 1."""
    env = os.environ.get("REASONER_VERIFY_WORKERS")
    if env:
        return max(1, int(env))
    return max(1, min(4, os.cpu_count() or 1))


@dataclass
class _Item:
    task: Task
    timeout: float
    future: Future = field(default_factory=Future)
    retries: int = 0


@dataclass
class _Job:
    items: list[_Item]
    pos: int = 0
    deadline: float = math.inf


class VerifierPool:
    """Worker processes running math-verify tasks with per-task hard timeouts (see the module docstring)."""

    def __init__(
        self, workers: int | None = None, *, memory_limit_mb: int | None = 4096, chunk_size: int = 8
    ):
        self.size = workers if workers is not None else default_workers()
        for name, value in (("workers", self.size), ("chunk_size", chunk_size)):
            if value < 1:
                raise ValueError(f"VerifierPool: {name} must be >= 1, got {value}")
        self.chunk_size = chunk_size
        self.memory_limit_mb = memory_limit_mb
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._queue: deque[_Job] = deque()
        self._closed = False
        self._error: BaseException | None = None
        self._zygote_restarts = 0
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._slots: list[WorkerHandle | None] = [None] * self.size
        self._zygote: Zygote | None = None
        self._spawned = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="reasoner-verify-dispatch")
        self._thread.start()
        self._spawned.wait()
        if self._error is not None:
            self.close()
            raise RuntimeError(f"verifier pool could not start: {self._error!r}") from self._error

    # ----- caller side (any thread) -----

    @property
    def usable(self) -> bool:
        return not self._closed and self._error is None and os.getpid() == self.pid

    def worker_pids(self) -> list[int]:
        """PIDs of the current worker processes, for tests and diagnostics."""
        return [w.pid for w in list(self._slots) if w is not None]

    def wait_ready(self, timeout: float = BOOT_TIMEOUT_S, *, every: bool = True) -> bool:
        """Block until every worker (``every=False``: at least one) is up; False on timeout."""
        end = time.monotonic() + timeout
        done = all if every else any
        while not done(w is not None and w.ready for w in list(self._slots)):
            if time.monotonic() > end or not self.usable:
                return False
            time.sleep(0.01)
        return True

    def submit(self, tasks: list[Task], timeout: float = DEFAULT_TIMEOUT_S) -> list[Future]:
        """Queue tasks; each future resolves to a ``Result``."""
        if not timeout > 0:
            raise ValueError(f"VerifierPool.submit: timeout must be > 0 seconds, got {timeout!r}")
        items = [_Item(task, float(timeout)) for task in tasks]
        size = max(1, min(self.chunk_size, math.ceil(len(items) / (2 * self.size))))
        jobs = [_Job(items[i : i + size]) for i in range(0, len(items), size)]
        with self._lock:
            if not self.usable:
                raise RuntimeError(f"verifier pool is not usable (closed or failed: {self._error!r})")
            self._queue.extend(jobs)
        self._wake()
        return [item.future for item in items]

    def run(self, tasks: list[Task], timeout: float = DEFAULT_TIMEOUT_S) -> list[Result]:
        """Run tasks in parallel and return their results in order."""
        return [self._result(f) for f in self.submit(tasks, timeout)]

    def _result(self, future: Future) -> Result:
        while True:
            try:
                return future.result(timeout=1.0)
            except FutureTimeout:
                if not self._thread.is_alive():
                    raise RuntimeError(f"verifier pool dispatcher stopped: {self._error!r}") from None

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def close(self) -> None:
        """Stop the dispatcher, kill the processes and fail whatever is still queued."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)
        self._kill_processes()
        self._fail_all(RuntimeError("verifier pool closed"))
        for sock in (self._wake_r, self._wake_w):
            sock.close()

    # ----- dispatcher thread -----

    def _run(self) -> None:
        try:  # the zygote is spawned by this thread: on Linux it dies with it (PR_SET_PDEATHSIG)
            self._zygote = Zygote(self.memory_limit_mb)
        except BaseException as exc:
            self._error = exc
            return
        finally:
            self._spawned.set()
        try:
            while not self._closed:
                self._fill_slots()
                self._dispatch()
                self._poll(self._wait_timeout())
                self._expire()
        except BaseException as exc:
            logger.exception("verifier pool dispatcher failed")
            self._error = exc
            self._fail_all(exc)
            self._kill_processes()

    def _kill_processes(self) -> None:
        for w in self._slots:
            if w is not None:
                w.kill()
        if self._zygote is not None:
            self._zygote.kill()

    def _fail_all(self, exc: BaseException) -> None:
        with self._lock:
            jobs = list(self._queue)
            self._queue.clear()
        jobs += [w.job for w in self._slots if w is not None and w.job is not None]
        for job in jobs:
            for item in job.items:
                if not item.future.done():
                    item.future.set_exception(exc)

    @property
    def _live_zygote(self) -> Zygote:
        """The zygote; the dispatcher thread spawns it before its loop, so its methods always find one."""
        if self._zygote is None:
            raise RuntimeError("verifier pool: the dispatcher has no zygote")
        return self._zygote

    def _fill_slots(self) -> None:
        if not self._live_zygote.ready:
            return
        for i, w in enumerate(self._slots):
            if w is None:
                try:
                    self._slots[i] = self._live_zygote.fork()
                except (OSError, EOFError):
                    self._restart_zygote()
                    return

    def _restart_zygote(self) -> None:
        self._zygote_restarts += 1
        if self._zygote_restarts > 5:
            raise RuntimeError("verifier zygote keeps dying")
        logger.warning("verifier zygote is gone; restarting it")
        self._live_zygote.kill()
        self._zygote = Zygote(self.memory_limit_mb)

    def _dispatch(self) -> None:
        """Give queued chunks to ready workers, keeping up to ``INFLIGHT_CHUNKS`` chunks queued per worker so
        that a worker does not wait for the dispatcher between chunks (it may be slow to wake on a busy host)."""
        for w in self._slots:
            while w is not None and w.ready and self._pending(w) < INFLIGHT_CHUNKS * self.chunk_size:
                with self._lock:
                    if not self._queue:
                        return
                    chunk = self._queue.popleft()
                if w.job is None or w.job.pos >= len(w.job.items):
                    w.job = _Job(list(chunk.items), deadline=time.monotonic() + chunk.items[0].timeout)
                else:
                    w.job.items.extend(chunk.items)
                try:
                    w.conn.send([item.task for item in chunk.items])
                except (OSError, ValueError):
                    self._replace(w, "crash")
                    break

    @staticmethod
    def _pending(w: WorkerHandle) -> int:
        return 0 if w.job is None else len(w.job.items) - w.job.pos

    def _wait_timeout(self) -> float:
        now = time.monotonic()
        deadlines = [w.job.deadline for w in self._slots if w is not None and w.job is not None]
        if not self._live_zygote.ready:
            deadlines.append(self._live_zygote.started + BOOT_TIMEOUT_S)
        return min([1.0, *(max(0.0, d - now) for d in deadlines)])

    def _poll(self, timeout: float) -> None:
        conns = {w.conn: w for w in self._slots if w is not None}
        for obj in wait([*conns, self._wake_r, self._live_zygote.sock], timeout):  # the zygote: its socket
            if obj is self._wake_r:
                self._drain_wake()
            elif obj is self._live_zygote.sock:
                try:
                    self._live_zygote.on_readable()
                except (EOFError, OSError):
                    self._restart_zygote()
            else:  # what is left is a worker's connection
                self._read_worker(conns[cast(Connection, obj)])

    def _read_worker(self, worker: WorkerHandle) -> None:
        try:
            while worker.conn.poll():
                self._handle(worker, worker.conn.recv())
        except (EOFError, OSError):
            worker.dead = True
            self._replace(worker, "crash")

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _handle(self, w: WorkerHandle, msg: tuple) -> None:
        if msg[0] == "ready":
            w.ready = True
            self._zygote_restarts = 0
        elif w.job is not None and w.job.pos < len(w.job.items):
            _, result = msg  # results arrive in the order the tasks were sent
            job = w.job
            item = job.items[job.pos]
            if not item.future.done():
                item.future.set_result(result)
            job.pos += 1
            if job.pos >= len(job.items):
                w.job = None
            else:
                job.deadline = time.monotonic() + job.items[job.pos].timeout

    def _expire(self) -> None:
        now = time.monotonic()
        for w in list(self._slots):
            if w is not None and w.job is not None and now > w.job.deadline:
                self._replace(w, "timeout")
        if not self._live_zygote.ready and now > self._live_zygote.started + BOOT_TIMEOUT_S:
            self._restart_zygote()

    def _replace(self, w: WorkerHandle, status: str) -> None:
        """Kill ``w``, settle or re-queue its unfinished tasks, and refill its slot from the zygote."""
        job = w.job
        w.kill()
        self._slots[self._slots.index(w)] = None
        if job is not None and job.pos < len(job.items):
            self._settle(job, status)
        self._fill_slots()

    def _settle(self, job: _Job, status: str) -> None:
        """Resolve the task a dead worker was running (timeout, or a retry) and re-queue the rest."""
        current, rest = job.items[job.pos], job.items[job.pos + 1 :]
        if status == "timeout":
            logger.warning("verifier task exceeded %.1fs; worker replaced", current.timeout)
            current.future.set_result(("timeout", None))
        elif current.retries < 1:
            logger.warning("verifier worker died mid-task; retrying once on a fresh worker")
            current.retries += 1
            rest = [current, *rest]
        else:
            current.future.set_result(("crash", None))
        if rest:
            with self._lock:
                self._queue.appendleft(_Job(rest))


_pool: VerifierPool | None = None
_pool_lock = threading.Lock()
_atexit_registered = False


def get_pool() -> VerifierPool:
    """The shared module-level pool, created on first use (and again after a fork, close or failure)."""
    global _pool, _atexit_registered
    with _pool_lock:
        if _pool is None or not _pool.usable:
            if _pool is not None and os.getpid() == _pool.pid:
                _pool.close()
            _pool = VerifierPool()
            if not _atexit_registered:
                atexit.register(shutdown_pool)
                _atexit_registered = True
        return _pool


def shutdown_pool() -> None:
    """Close the shared pool (idempotent; a later ``get_pool()`` starts a new one)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None and os.getpid() == pool.pid:
        pool.close()
