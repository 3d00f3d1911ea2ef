"""What every ``reasoner`` subcommand shares: the user-error class and the machine-readable stdout.

A bottom-layer module (L0, stdlib only), so that the subcommand modules (``reasoner/*/cli.py``,
``evals/cli.py``) import it without importing ``reasoner.cli``, which imports them to build its parser.
The model/engine flags live next to the engines they pick (``reasoner.engines.add_engine_args``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator

__all__ = ["CLIError", "promises_document", "stdout_to_stderr", "write_document"]


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


_document_fd: int | None = None
"""The real stdout while a command that prints a machine-readable document runs (fd 1 points at stderr then)."""


def promises_document(args: argparse.Namespace) -> bool:
    """Whether stdout is one machine-readable document: ``decode --json``, ``train --print-config``."""
    return bool(getattr(args, "json", False) or getattr(args, "print_config", False))


@contextlib.contextmanager
def stdout_to_stderr(active: bool) -> Iterator[None]:
    """While active, file descriptor 1 points at stderr, so only ``write_document`` reaches stdout: vLLM's
    logger (stdout by default), stray prints, C-level writes and child processes started meanwhile all land on
    stderr. Inactive when ``sys.stdout`` is not the process's stdout (an in-process caller capturing it)."""
    global _document_fd
    if not active or _document_fd is not None or sys.__stdout__ is None or sys.stdout is not sys.__stdout__:
        yield
        return
    sys.stdout.flush()
    _document_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(_document_fd, 1)
        os.close(_document_fd)
        _document_fd = None


def write_document(text: str) -> None:
    """Write a command's machine-readable output (``--json``, ``--print-config``) to the real stdout."""
    if _document_fd is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    data = text.encode("utf-8")
    while data:
        data = data[os.write(_document_fd, data) :]
