"""Shared fixtures: a generated small trove (once per session), fresh cases, the CLI runner."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.store import Case

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"
HOSTILE = REPO / "fixtures" / "hostile"
# The keys of `workbench pages --json` that issue #3 names: an interface, never renamed.
PAGE_KEYS = frozenset(
    {
        "page_id",
        "source_path",
        "source_sha256",
        "page_number",
        "text_source",
        "ocr_confidence",
        "char_count",
        "page_sha256",
    }
)


def tesseract_ready(*langs: str) -> bool:
    if shutil.which("tesseract") is None:
        return False
    from workbench import ocr

    return set(langs) <= ocr.available_languages()


needs_tesseract = pytest.mark.skipif(
    not tesseract_ready("eng", "fas", "osd"), reason="Tesseract with eng+fas+osd is not installed"
)
needs_corpus = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"shared corpus not found at {CORPUS}"
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Any attempt by Python code in the test process to open an internet socket fails.

    The one exception: tests marked ``loopback`` (the Dask cluster tests, whose scheduler
    and workers run on this machine) may open internet sockets, but connect and bind
    only to 127.0.0.1 / ::1; any other address still fails.
    """
    real_socket = socket.socket
    loopback = request.node.get_closest_marker("loopback") is not None

    def only_loopback(address: object) -> None:
        if isinstance(address, tuple) and address:
            host = str(address[0]).split("%")[0]
            try:
                allowed = host == "localhost" or ipaddress.ip_address(host).is_loopback
            except ValueError:
                allowed = False
            if not allowed:
                raise AssertionError(f"a loopback-only test tried to reach {address!r}")

    class GuardedSocket(real_socket):  # type: ignore[misc, valid-type]
        def __init__(self, family: int = -1, *args: object, **kwargs: object) -> None:
            if family in (socket.AF_INET, socket.AF_INET6) and not loopback:
                raise AssertionError("workbench tried to open a network socket")
            super().__init__(family, *args, **kwargs)

        def connect(self, address: object) -> None:
            only_loopback(address)
            super().connect(address)

        def connect_ex(self, address: object) -> int:
            only_loopback(address)
            return super().connect_ex(address)

        def bind(self, address: object) -> None:
            only_loopback(address)
            super().bind(address)

    monkeypatch.setattr(socket, "socket", GuardedSocket)


@pytest.fixture(scope="session")
def small_trove(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small fixture trove (about 30 pages, every kind of file), built once."""
    from fixtures.generate import generate_small_trove

    out = tmp_path_factory.mktemp("trove")
    generate_small_trove(out)
    return out


def trove_inputs(trove: Path) -> list[str]:
    """The document folders of a generated trove (its ground_truth.json is not a document)."""
    return [str(trove / name) for name in ("born_digital", "scans", "loose")]


@pytest.fixture(scope="session")
def ground_truth(small_trove: Path) -> dict:
    return json.loads((small_trove / "ground_truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def ingested_small_trove(
    small_trove: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, object]:
    """The small trove ingested once with fas+eng (shared, read-only for tests)."""
    from workbench.pipeline import ingest

    case_dir = tmp_path_factory.mktemp("case") / "case"
    with Case.open(case_dir, create=True) as case:
        report = ingest(case, trove_inputs(small_trove), lang="fas+eng", jobs=2)
    return case_dir, report


@pytest.fixture
def case_dir(tmp_path: Path) -> Path:
    return tmp_path / "case"


@pytest.fixture
def cli(case_dir: Path):
    """Run the CLI in-process against a fresh case; returns click's Result."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        env = {"WORKBENCH_CASE": str(case_dir)}
        return runner.invoke(main, list(args), env=env, input=input, catch_exceptions=False)

    return run


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    return env
