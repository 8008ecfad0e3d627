"""SHA-256 of a file, in a module of its own so that it costs nothing to import.

Why: the review log re-hashes source files (``log verify``) and the ingest hashes every
input in the coordinator; neither should pay for importing PyMuPDF and Pillow with
:mod:`workbench.readers` just to hash bytes.
"""

from __future__ import annotations

import hashlib
import os


def sha256_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """SHA-256 and size of a file, read in chunks so any size fits in memory."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
