"""Argument types for the entry points.

MLflow passes every `-P name=value` through as text without checking the types
that `MLproject` declares, so each entry point checks its own and fails with one
clear line (argparse's usage error) instead of a traceback deep in training.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def positive_int(text: str) -> int:
    return _number(text, int, "a whole number above 0", lambda value: value > 0)


def non_negative_int(text: str) -> int:
    return _number(text, int, "a whole number, 0 or more", lambda value: value >= 0)


def positive_float(text: str) -> float:
    return _number(text, float, "a finite number above 0", lambda value: math.isfinite(value) and value > 0)


def non_negative_float(text: str) -> float:
    return _number(text, float, "a finite number, 0 or more", lambda value: math.isfinite(value) and value >= 0)


def accuracy(text: str) -> float:
    return _number(text, float, "an accuracy between 0 and 1", lambda value: 0 < value <= 1)


def probability(text: str) -> float:
    return _number(text, float, "a number between 0 and 1", lambda value: 0 <= value <= 1)


def version_number(text: str) -> int:
    """The number of one of `pipeline.training.versions`."""
    from pipeline.training.versions import VERSIONS

    number = non_negative_int(text)
    if number not in VERSIONS:
        raise argparse.ArgumentTypeError(f"{number} is not a version; choose one of {', '.join(map(str, VERSIONS))}")
    return number


def boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def option(name: str) -> tuple[str, ...]:
    """Both spellings of an option: `--batch-size` for people, `--batch_size` as `mlflow run` passes it."""
    return (f"--{name}", f"--{name.replace('-', '_')}") if "-" in name else (f"--{name}",)


def _number(text: str, kind: type, description: str, allowed: Callable[[float], bool]) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {description}, got {text!r}") from None
    if not allowed(value):
        raise argparse.ArgumentTypeError(f"expected {description}, got {text!r}")
    return value
