"""The one exception every reader raises for bad input, and the guard that produces it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from fuselens.model_zoo.case import CaseValidationError

P = ParamSpec("P")
R = TypeVar("R")


class IngestError(Exception):
    """A file that cannot be read: which file, which modality, what is wrong."""

    def __init__(self, path: str | Path, modality: str, problem: str):
        self.path = str(path)
        self.modality = modality
        self.problem = problem
        super().__init__(f"{Path(path).name}: {modality}: {problem}")


def describe(exc: BaseException) -> str:
    """A short, user-facing description of a library exception."""
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a file"
    if isinstance(exc, MemoryError):
        return "too large to load into memory"
    text = str(exc).strip()
    return text if text else type(exc).__name__


def guarded(modality: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn any failure of a reader ``fn(path, ...)`` into an :class:`IngestError`."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except IngestError:
                raise
            except CaseValidationError as exc:
                raise IngestError(str(args[0]), exc.modality, exc.problem) from exc
            except Exception as exc:  # a reader must never crash the app
                raise IngestError(str(args[0]), modality, describe(exc)) from exc

        return wrapped

    return decorate
