"""The tool never talks to the network, and carries nothing that does."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import needs_tesseract, subprocess_env


def test_onnxruntime_is_not_installed() -> None:
    """PyMuPDF 2.0's default extras bring onnxruntime, which phones home: it must not be here."""
    assert importlib.util.find_spec("onnxruntime") is None
    for extra in ("pymupdf4llm", "pymupdf_layout"):
        assert importlib.util.find_spec(extra) is None, extra


def test_python_sockets_are_guarded() -> None:
    """The autouse guard in conftest really blocks internet sockets in this process."""
    import socket

    with pytest.raises(AssertionError, match="network socket"):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)


@needs_tesseract
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_a_real_ingest_opens_no_internet_socket(small_trove: Path, tmp_path: Path) -> None:
    """Run a >10 s OCR ingest under strace -f and fail on any AF_INET/AF_INET6 socket.

    Patching socket.socket only catches Python code; strace sees every process,
    Tesseract and any library's threads included.
    """
    trace = tmp_path / "strace.log"
    scans = [str(p) for p in sorted((small_trove / "scans").rglob("*")) if p.is_file()]
    command = [
        "strace", "-f", "-qq", "-e", "trace=socket,connect", "-o", str(trace),
        sys.executable, "-m", "workbench", "--case", str(tmp_path / "case"),
        "ingest", "--jobs", "1", "--lang", "fas+eng", "--quiet", *scans,
    ]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(command, env=subprocess_env(), capture_output=True, text=True)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed > 10, f"the traced ingest took only {elapsed:.1f} s; trace a longer one"
    offending = _internet_sockets(trace)
    assert offending == [], "network sockets opened:\n" + "\n".join(offending[:20])


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_the_strace_check_does_catch_a_socket(tmp_path: Path) -> None:
    """Control: the same strace filter does see a Python program open an internet socket."""
    trace = tmp_path / "strace.log"
    program = "import socket; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()"
    subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=socket,connect", "-o", str(trace),
         sys.executable, "-c", program],
        check=True,
    )  # fmt: skip
    assert _internet_sockets(trace)


def _internet_sockets(trace: Path) -> list[str]:
    return [line for line in trace.read_text().splitlines() if re.search(r"AF_INET6?\b", line)]


def test_the_core_never_imports_the_ui() -> None:
    """The library core stays importable without Textual or Rich (the app is a face on top)."""
    program = (
        "import sys\n"
        "import workbench.pipeline, workbench.store, workbench.views, workbench.metadata\n"
        "import workbench.readers, workbench.ocr, workbench.textdates, workbench.quality\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", program], check=True, env=subprocess_env())
