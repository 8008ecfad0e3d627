"""One exception hierarchy for the whole core.

Every message is written for a journalist: it says what went wrong, with which file,
and what to do next. The CLI maps ``exit_code`` to the process status in one place.
"""

from __future__ import annotations

import os


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


class ClusterError(WorkbenchError):
    """The Dask cluster an ingest was sent to cannot be used: the scheduler cannot be
    reached or went away, it has no workers, or its workers disagree on the versions
    that decide a page's text. What was committed before is kept; a rerun resumes."""

    exit_code = 8


class DateParseError(UsageError):
    """A date written by a user could not be understood."""


class CustodyError(SourceError):
    """The file at a source's path is not the one ingested (its SHA-256 differs).

    Its pages' review decisions are stale: they were made on another file.
    """

    def __init__(self, path: str, recorded_sha256: str, current_sha256: str) -> None:
        super().__init__(
            path,
            f"changed since it was ingested (sha256 {recorded_sha256} now {current_sha256}): "
            "its pages' decisions are stale; restore the original file",
        )
        self.recorded_sha256 = recorded_sha256
        self.current_sha256 = current_sha256

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:  # type: ignore[override]
        return (type(self), (self.path, self.recorded_sha256, self.current_sha256))


class ReadOnlyCaseError(CaseError):
    """The case is on a read-only drive (or in a folder we cannot write): it can be read,
    searched and exported, but nothing that changes it can run."""


class DamagedCaseError(CaseError):
    """The case database is not a SQLite file, is truncated, or has a damaged page."""


class DiskFullError(CaseError):
    """The drive holding the case (or its index) is full. Every file committed before is
    kept; the same command, run again once space is freed, resumes."""

    exit_code = 7

    def __init__(self, folder: str) -> None:
        super().__init__(
            f"{folder}: the disk is full (no space left on the drive holding this folder); "
            "what was stored before is kept: free some space and run the same command again"
        )
        self.folder = folder


def read_only_message(root: str) -> str:
    """The one wording of a refused write on a read-only case (store, index, CLI)."""
    return (
        f"{root}: the case is read-only (a read-only drive or folder) and this command would "
        "change it; reading, searching and exporting still work. To change the case, copy "
        "it to a writable drive (or remount the drive read-write)"
    )


# errno values that mean the drive, not the program, refused a write
_DISK_FULL_ERRNOS = {28, 122}  # ENOSPC, EDQUOT
_READ_ONLY_ERRNOS = {30}  # EROFS


def from_os_error(error: OSError, folder: str, *, case: bool = True) -> WorkbenchError | None:
    """The typed error for an OSError that says the drive is full or read-only; else None.

    Why here: the store, the index and the exports all write files, and all must turn
    ENOSPC and EROFS into the same one line and exit status. ``folder`` is the case (or
    with ``case=False`` another folder being written, e.g. an export's).
    """
    where = folder
    if error.filename:  # the folder of the file that could not be written
        where = os.path.dirname(os.path.abspath(os.fsdecode(error.filename))) or folder
    if error.errno in _DISK_FULL_ERRNOS:
        return DiskFullError(where)
    if error.errno in _READ_ONLY_ERRNOS:
        inside = os.path.abspath(where).startswith(os.path.abspath(folder))
        if case and inside:
            return ReadOnlyCaseError(read_only_message(folder))
        return CaseError(f"{where}: the drive is read-only; choose a writable folder")
    return None


class LogVerifyError(WorkbenchError):
    """A review log (ours, or a partner's being imported) does not verify: a broken link,
    a signature that does not match, a log cut short or rewritten. Exit status 6."""

    exit_code = 6
