"""Every metadata tag of a file, read by ExifTool (maker notes, XMP, IPTC, PDF Info, GPS).

Why ExifTool: it is the complete reader (camera maker notes with their serial numbers,
every XMP namespace), far beyond what Pillow or PyMuPDF expose. ``make setup`` installs
it (Debian libimage-exiftool-perl). Starting Perl costs ~75 ms a file, more than a whole
born-digital page's ingest, so one ExifTool process is kept for the run (``-stay_open``)
and given one file after another; a file it takes too long over ends that process, and the
next file starts a new one.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import shutil
import subprocess
from typing import Any

from workbench.errors import WorkbenchError

TIMEOUT_SECONDS = 60
# Groups that describe the copy on this disk or ExifTool itself, not the document.
_NOT_THE_DOCUMENT = ("ExifTool:", "System:", "File:", "SourceFile")
_READY = b"{ready}"


class ExifToolError(WorkbenchError):
    """ExifTool is missing or failed on a file."""


def available() -> bool:
    return shutil.which("exiftool") is not None


class _Session:
    """One ``exiftool -stay_open True -@ -`` process, fed a file at a time."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def read(self, path: str) -> bytes:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                ["exiftool", "-stay_open", "True", "-@", "-"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        assert self.process.stdin is not None and self.process.stdout is not None
        arguments = [
            "-j",
            "-G1",
            "-n",
            os.path.abspath(path),
            "-execute",
        ]  # no -q: it hides {ready}
        self.process.stdin.write(("\n".join(arguments) + "\n").encode("utf-8"))
        self.process.stdin.flush()
        output = b""
        descriptor = self.process.stdout.fileno()
        while not output.rstrip().endswith(_READY):
            ready, _, _ = select.select([descriptor], [], [], TIMEOUT_SECONDS)
            chunk = os.read(descriptor, 1 << 16) if ready else b""
            if not chunk:
                self.close()
                raise ExifToolError(f"exiftool gave no answer within {TIMEOUT_SECONDS} s")
            output += chunk
        return output.rstrip()[: -len(_READY)]

    def close(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            self.process = None


_session = _Session()
atexit.register(_session.close)


def read_tags(path: str) -> dict[str, Any]:
    """``Group:Tag`` -> value (numbers as numbers: ``-n``) for every tag ExifTool reads.

    The caller checks the file against its custody hash first."""
    if not available():
        raise ExifToolError(
            "exiftool is not installed: run 'make setup' (or apt-get install "
            "libimage-exiftool-perl) to check metadata"
        )
    try:
        found = json.loads(_session.read(path).decode("utf-8", "replace") or "[]")
    except ValueError:
        raise ExifToolError("exiftool gave no readable answer") from None
    tags = found[0] if found and isinstance(found[0], dict) else {}
    return {k: v for k, v in tags.items() if not k.startswith(_NOT_THE_DOCUMENT)}
