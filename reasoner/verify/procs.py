"""Parent-side handles of the verifier's processes: the zygote (started fresh with ``python -c``) and the warm
workers it forks, whose sockets it passes back over a Unix socket (``SCM_RIGHTS``). See ``pool.py``."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any


@dataclass
class WorkerHandle:
    pid: int
    conn: Connection
    started: float = field(default_factory=time.monotonic)
    ready: bool = False
    dead: bool = False
    job: Any = None
    """The chunk of tasks this worker is running (owned by the pool's dispatcher)."""

    def kill(self) -> None:
        if not self.dead:  # never signal a pid we know has exited: it may have been reused
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
            self.dead = True
        try:
            self.conn.close()
        except OSError:
            pass


def _child_env() -> dict[str, str]:
    """The parent's environment, with its ``sys.path`` so the child finds ``reasoner`` from any checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if isinstance(p, str) and p and os.path.isdir(p))
    return env


class Zygote:
    """The process that forks workers; talks over one Unix socket (status lines, then fd passing)."""

    def __init__(self, memory_limit_mb: int | None) -> None:
        ours, theirs = socket.socketpair()
        code = "from reasoner.verify.worker import zygote_main; zygote_main()"
        cmd = [sys.executable, "-c", code, str(theirs.fileno()), str(memory_limit_mb or 0), str(os.getpid())]
        try:  # own session: terminal signals (Ctrl-C) do not reach it, and it gets its own CPU share
            self.proc = subprocess.Popen(
                cmd,
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                env=_child_env(),
                start_new_session=True,
            )
        finally:
            theirs.close()
        self.sock = ours
        self.started = time.monotonic()
        self.ready = False
        self._buffer = b""

    def fileno(self) -> int:
        return self.sock.fileno()

    def on_readable(self) -> None:
        """Read the start-up status line; raises EOFError if the zygote died, RuntimeError if it failed."""
        data = self.sock.recv(4096)
        if not data:
            raise EOFError("verifier zygote exited")
        if self.ready:
            return
        self._buffer += data
        if b"\n" in self._buffer:
            line = self._buffer.split(b"\n", 1)[0].decode("utf-8", errors="replace")
            if line != "READY":
                raise RuntimeError(f"verifier worker could not start: {line}")
            self.ready = True

    def fork(self) -> WorkerHandle:
        """A new warm worker (raises OSError/EOFError if the zygote is gone)."""
        self.sock.settimeout(30.0)
        try:
            self.sock.sendall(b"F")
            msg, fds, _, _ = socket.recv_fds(self.sock, 4, 1)
            while 0 < len(msg) < 4:
                msg += self.sock.recv(4 - len(msg))
        finally:
            self.sock.settimeout(None)
        if len(msg) < 4:
            raise EOFError("verifier zygote exited")
        pid = struct.unpack("i", msg)[0]
        if pid < 0 or not fds:
            raise OSError("verifier zygote could not fork")
        return WorkerHandle(pid, Connection(fds[0]))

    def kill(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=2.0)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.sock.close()
