"""One exception hierarchy for the whole core.

Every message is written for a journalist: it says what went wrong, with which file,
and what to do next. The CLI maps ``exit_code`` to the process status in one place.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base of every error the core raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class CaseError(WorkbenchError):
    """The case folder or its database cannot be used as asked."""

    exit_code = 2


class UsageError(WorkbenchError):
    """The user asked for something that does not make sense (bad id, bad option)."""

    exit_code = 2


class SourceError(WorkbenchError):
    """One input file cannot be ingested; the batch goes on without it."""

    exit_code = 3

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # raised in worker processes: it must survive the trip back to the main process
        return (type(self), (self.path, self.reason))


class OcrError(WorkbenchError):
    """Tesseract is missing, lacks a language, or failed on a page."""

    exit_code = 4


class DateParseError(UsageError):
    """A date written by a user could not be understood."""
