"""argparse ``type=`` factories shared by the CLIs: each error names the flag and the value given."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["fraction", "non_negative_int", "positive_int"]


def _int_at_least(flag: str, least: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{flag} must be >= {least}, got {value}")
        return value

    return parse


def positive_int(flag: str) -> Callable[[str], int]:
    """argparse type: an integer >= 1, errors naming ``flag``."""
    return _int_at_least(flag, 1)


def non_negative_int(flag: str) -> Callable[[str], int]:
    """argparse type: an integer >= 0, errors naming ``flag``."""
    return _int_at_least(flag, 0)


def fraction(flag: str) -> Callable[[str], float]:
    """argparse type: a float in [0, 1], errors naming ``flag``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a number in [0, 1], got {text!r}") from None
        if math.isnan(value) or not 0.0 <= value <= 1.0:
            raise argparse.ArgumentTypeError(f"{flag} must be in [0, 1], got {text}")
        return value

    return parse
