"""Ingest on a Dask cluster (issue #16): real `dask scheduler` / `dask worker` processes.

Everything runs on 127.0.0.1: the tests are marked ``loopback``, which is the only case
where the conftest network guard lets the test process open an internet socket (and
then only to loopback addresses). Every wait has a timeout; every process started is
killed at the end of its test.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HOSTILE, needs_tesseract, subprocess_env
from workbench.pipeline import IngestObserver, ingest
from workbench.store import Case

DASK = Path(sys.executable).with_name("dask")
needs_dask = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None or not DASK.exists(),
    reason="Dask distributed is not installed (pip install 'workbench[cluster]'; make setup does)",
)
pytestmark = [needs_dask, needs_tesseract, pytest.mark.loopback, pytest.mark.timeout(300)]

START_TIMEOUT = 90.0  # a scheduler or worker up and registered, on a busy 2-core machine


class LocalCluster:
    """A real scheduler and workers on 127.0.0.1, each in its own process group."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.scheduler_file = folder / "scheduler.json"
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.address = ""

    def start_scheduler(self) -> str:
        self.scheduler_file.unlink(missing_ok=True)
        command = [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0",
                   "--no-dashboard", "--scheduler-file", str(self.scheduler_file)]  # fmt: skip
        self.scheduler = self._start(command, "scheduler")
        self.address = _wait_for(
            lambda: (
                self.scheduler_file.exists()
                and json.loads(self.scheduler_file.read_text() or "{}").get("address")
            ),
            "the scheduler to start",
        )
        return self.address

    def add_worker(
        self, *, prefix: list[str] | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        name = f"worker{len(self.workers)}"
        command = [*(prefix or []), str(DASK), "worker", "--scheduler-file",
                   str(self.scheduler_file), "--nthreads", "1", "--nworkers", "1",
                   "--no-dashboard", "--host", "127.0.0.1", "--name", name,
                   "--death-timeout", "60"]  # fmt: skip
        worker = self._start(command, name, env)
        self.workers.append(worker)
        log = self.folder / f"{name}.log"
        _wait_for(lambda: "Registered to:" in log.read_text(errors="replace"), f"{name} to join")
        return worker

    def _start(
        self, command: list[str], name: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 - kept by the process
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**subprocess_env(), **(env or {})},
            start_new_session=True,
        )

    def kill(self, process: subprocess.Popen[bytes] | None, sig: int = signal.SIGKILL) -> None:
        """The process and everything it started (a worker's nanny and worker process)."""
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)

    def stop(self) -> None:
        for process in [*self.workers, self.scheduler]:
            self.kill(process)


def _wait_for(condition: Any, what: str, timeout: float = START_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            value = condition()
            if value:
                return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def local_cluster(tmp_path: Path):
    cluster = LocalCluster(tmp_path / "dask")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def trove_files(small_trove: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Scanned and born-digital files of the small trove, in a folder of their own (so
    that a worker's mount namespace can hide exactly it): scans first, the OCR'd ones;
    then a few bad files (damaged, encrypted, a decompression bomb)."""
    folder = tmp_path_factory.mktemp("cluster-trove") / "trove"
    shutil.copytree(small_trove / "scans", folder / "1-scans")
    born = sorted(p for p in (small_trove / "born_digital").rglob("*.pdf"))[:3]
    (folder / "2-born").mkdir()
    for number, path in enumerate(born):
        shutil.copy2(path, folder / "2-born" / f"{number}-{path.name}")
    (folder / "3-bad").mkdir()
    for name in BAD:
        shutil.copy2(HOSTILE / name, folder / "3-bad" / name)
    return folder


BAD = ("bomb.png", "corrupt.pdf", "encrypted.pdf", "truncated.pdf")


def good(report: Any) -> bool:
    """Nothing failed but (some of) the bad files, and no page's OCR."""
    return not report.page_errors and all("/3-bad/" in path for path, _ in report.failures)


@pytest.fixture(scope="module")
def local_case(trove_files: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same files ingested by the local pool: what the cluster must reproduce."""
    case_dir = tmp_path_factory.mktemp("cluster-local") / "case"
    with Case.open(case_dir, create=True) as case:
        report = ingest(case, [str(trove_files)], lang="fas+eng", jobs=2)
    assert good(report) and len(report.failures) >= 3 and report.pages_ocr > 0
    return case_dir


def case_content(case_dir: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every page (ids, fingerprints, text, provenance, metadata) and every source."""
    db = sqlite3.connect(case_dir / "workbench.sqlite")
    try:
        pages = db.execute(
            "SELECT p.*, s.path, s.sha256 FROM pages p JOIN sources s ON s.id = p.source_id"
            " ORDER BY p.id"
        ).fetchall()
        sources = db.execute(
            "SELECT path, sha256, size, kind, status, page_count, metadata, error"
            " FROM sources ORDER BY id"
        ).fetchall()
    finally:
        db.close()
    return {"pages": pages, "sources": sources}


def _page_count(case_dir: Path) -> int:
    db = sqlite3.connect(case_dir / "workbench.sqlite", timeout=5)
    try:
        return db.execute("SELECT count(*) FROM pages").fetchone()[0]
    except sqlite3.OperationalError:  # the file is there, its tables not yet
        return 0
    finally:
        db.close()


def test_a_cluster_ingest_gives_the_local_case(
    local_cluster: LocalCluster, trove_files: Path, local_case: Path, tmp_path: Path
) -> None:
    """Two single-threaded workers: same page ids, hashes, text, provenance, sources and
    failures (the bad files fail with the same reasons)."""
    address = local_cluster.start_scheduler()
    local_cluster.add_worker()
    local_cluster.add_worker()
    case_dir = tmp_path / "case"
    with Case.open(case_dir, create=True) as case:
        report = ingest(case, [str(trove_files)], lang="fas+eng", cluster=address)
    assert good(report), (report.failures, report.page_errors)
    assert report.pages_ocr > 0
    assert case_content(case_dir) == case_content(local_case)
    # run again: nothing added twice
    with Case.open(case_dir) as case:
        again = ingest(case, [str(trove_files)], lang="fas+eng", cluster=address)
    assert again.pages_added == 0 and good(again)
    assert case_content(case_dir) == case_content(local_case)


def test_workers_need_no_access_to_the_trove(
    local_cluster: LocalCluster, trove_files: Path, local_case: Path, tmp_path: Path
) -> None:
    """Workers in a mount namespace where an empty tmpfs hides the trove folder: the
    files' bytes travel with the jobs, so the case is the same."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) to hide the trove from the workers")
    probe = subprocess.run(
        ["unshare", "--mount", "sh", "-c", f"mount -t tmpfs tmpfs '{tmp_path}'"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"mount namespaces are not allowed here: {probe.stderr.strip()}")
    address = local_cluster.start_scheduler()
    listing = tmp_path / "listing.txt"
    hide = [
        "unshare", "--mount", "sh", "-c",
        f"mount -t tmpfs tmpfs '{trove_files}' && ls -A '{trove_files}' > '{listing}'"
        ' && exec "$@"', "hide",
    ]  # fmt: skip
    local_cluster.add_worker(prefix=hide)
    local_cluster.add_worker(prefix=hide)
    assert listing.read_text() == ""  # what the workers see of the trove: nothing
    case_dir = tmp_path / "case"
    with Case.open(case_dir, create=True) as case:
        report = ingest(case, [str(trove_files)], lang="fas+eng", cluster=address)
    assert good(report), (report.failures, report.page_errors)
    assert case_content(case_dir) == case_content(local_case)


class _KillAWorker(IngestObserver):
    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.killed = False

    def page_done(self, pages_done: int, total_pages: int) -> None:
        if not self.killed:  # the first page back: the other worker is busy with one
            self.killed = True
            self.cluster.kill(self.cluster.workers[0])


def test_a_worker_killed_mid_ingest_loses_nothing(
    local_cluster: LocalCluster, trove_files: Path, local_case: Path, tmp_path: Path
) -> None:
    """SIGKILL one of two workers (nanny and all) after the first page: Dask runs its
    jobs on the other; every page is there once, as in the local case."""
    address = local_cluster.start_scheduler()
    local_cluster.add_worker()
    local_cluster.add_worker()
    observer = _KillAWorker(local_cluster)
    case_dir = tmp_path / "case"
    with Case.open(case_dir, create=True) as case:
        report = ingest(
            case, [str(trove_files)], lang="fas+eng", cluster=address, observer=observer
        )
    assert observer.killed and local_cluster.workers[0].poll() is not None
    assert good(report), (report.failures, report.page_errors)
    assert case_content(case_dir) == case_content(local_case)


def test_the_scheduler_going_away_is_one_error_line_and_a_rerun_resumes(
    local_cluster: LocalCluster, trove_files: Path, local_case: Path, tmp_path: Path
) -> None:
    """The scheduler is killed while a page hangs (test hook; the ingest cannot finish
    before): one `error:` line, exit 8; on a new cluster the same command resumes."""
    address = local_cluster.start_scheduler()
    local_cluster.add_worker(env={"WORKBENCH_TEST_HANG_ON": "/2-born/2-@1"})
    case_dir = tmp_path / "case"
    command = [sys.executable, "-m", "workbench", "--case", str(case_dir), "ingest", "--lang",
               "fas+eng", "--no-check", "--cluster", address, str(trove_files)]  # fmt: skip
    run = subprocess.Popen(
        command, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(
            lambda: (case_dir / "workbench.sqlite").exists() and _page_count(case_dir), "a page"
        )
        local_cluster.kill(local_cluster.scheduler)
        _, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert run.returncode == 8, stderr
    assert len(errors) == 1 and "scheduler went away" in errors[0], stderr
    assert "Traceback" not in stderr
    kept = _page_count(case_dir)
    assert 0 < kept < len(case_content(local_case)["pages"])

    local_cluster.stop()
    local_cluster.workers.clear()
    address = local_cluster.start_scheduler()
    local_cluster.add_worker()
    command[command.index("--cluster") + 1] = address
    rerun = subprocess.run(
        command, env=subprocess_env(), capture_output=True, text=True, timeout=240
    )
    assert rerun.returncode == 3, rerun.stderr  # the bad files, named again
    assert "Traceback" not in rerun.stderr
    assert case_content(case_dir) == case_content(local_case)


def test_a_worker_without_a_language_pack_is_named_once(
    local_cluster: LocalCluster, trove_files: Path, tmp_path: Path
) -> None:
    """A worker whose Tesseract has eng but not fas: one error line naming it, exit 4,
    before any file is read; `cluster check --lang` says the same."""
    from workbench import ocr

    tessdata = tmp_path / "tessdata"
    tessdata.mkdir()
    found = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True)
    source = Path(found.stdout.split('"')[1]) if '"' in found.stdout else None
    if source is None or not (source / "eng.traineddata").exists():
        pytest.skip("cannot find Tesseract's tessdata folder")
    for name in ("eng", "osd"):
        (tessdata / f"{name}.traineddata").symlink_to(source / f"{name}.traineddata")
    assert "fas" in ocr.available_languages()
    address = local_cluster.start_scheduler()
    local_cluster.add_worker(env={"TESSDATA_PREFIX": str(tessdata)})
    case_dir = tmp_path / "case"
    ran = subprocess.run(
        [sys.executable, "-m", "workbench", "--case", str(case_dir), "ingest", "--lang",
         "fas+eng", "--cluster", address, str(trove_files)],
        env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    errors = [line for line in ran.stderr.splitlines() if line.startswith("error:")]
    assert ran.returncode == 4, ran.stderr
    assert len(errors) == 1, ran.stderr
    assert errors[0].count("worker0") + errors[0].count("tcp://127.0.0.1") >= 1
    assert "'fas'" in errors[0] and "tesseract-ocr-fas" in errors[0]
    assert not case_dir.exists() or _page_count(case_dir) == 0

    check = subprocess.run(
        [sys.executable, "-m", "workbench", "cluster", "check", "--cluster", address,
         "--lang", "fas+eng", "--json"],
        env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert check.returncode == 8, check.stderr
    facts = json.loads(check.stdout)
    assert facts["ok"] is False and len(facts["workers"]) == 1
    (worker,) = facts["workers"].values()
    assert worker["languages"] == ["eng", "osd"] and worker["nthreads"] == 1
    assert worker["tesseract"] == ocr.tesseract_version()


def test_cluster_check_reports_each_worker(local_cluster: LocalCluster) -> None:
    address = local_cluster.start_scheduler()
    local_cluster.add_worker()
    local_cluster.add_worker()
    check = subprocess.run(
        [sys.executable, "-m", "workbench", "cluster", "check", "--cluster", address],
        env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    lines = check.stdout.splitlines()
    assert lines[0] == f"cluster {address}: 2 worker(s)"
    assert len(lines) == 3 and all("Tesseract 5" in line and "fas" in line for line in lines[1:])
    # these workers run with Dask's defaults: the profiler and a 20 ms tick are notes
    assert "note: worker(s) " in check.stderr and "statistical profiler" in check.stderr
    assert "every 20 ms" in check.stderr


def test_a_job_past_the_time_limit_fails_its_file_only(
    local_cluster: LocalCluster,
    trove_files: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A page that hangs (test hook) is stopped by the worker's watchdog: its file fails
    as locally ('took longer than 4 s on page 1'), is not run again, the rest goes in."""
    monkeypatch.setenv("WORKBENCH_PAGE_TIMEOUT", "4")
    address = local_cluster.start_scheduler()
    for _ in range(2):
        local_cluster.add_worker(env={"WORKBENCH_TEST_HANG_ON": "/2-born/0-@1"})
    case_dir = tmp_path / "case"
    with Case.open(case_dir, create=True) as case:
        report = ingest(case, [str(trove_files)], lang="fas+eng", cluster=address)
    failures = [(p, r) for p, r in report.failures if "/3-bad/" not in p]
    assert len(failures) == 1, report.failures
    path, reason = failures[0]
    assert "/2-born/0-" in path
    assert "took longer than 4 s on page 1 and was stopped" in reason
    assert report.files_ingested == report.files_seen - len(report.failures)


def test_a_job_that_crashes_every_worker_fails_its_file_only(
    local_cluster: LocalCluster, trove_files: Path, tmp_path: Path
) -> None:
    """A file whose opening kills the worker (SIGSEGV, test hook): Dask gives it to a
    few workers (its allowed-failures), then it fails as a local crash does."""
    address = local_cluster.start_scheduler()
    for _ in range(2):
        local_cluster.add_worker(env={"WORKBENCH_TEST_CRASH_ON": "/2-born/1-"})
    case_dir = tmp_path / "case"
    with Case.open(case_dir, create=True) as case:
        report = ingest(case, [str(trove_files / "2-born")], lang="fas+eng", cluster=address)
    assert len(report.failures) == 1, report.failures
    path, reason = report.failures[0]
    assert "/2-born/1-" in path
    assert reason.startswith("the PDF/image engine crashed while opening it")
    assert report.files_ingested == 2


MALLOC_VAR = "MALLOC_TRIM_THRESHOLD_"


def test_jobs_run_without_the_nannys_malloc_setting(local_cluster: LocalCluster) -> None:
    """Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_ set, which turns off
    glibc's adaptive mmap threshold (page images mapped and faulted in afresh on every
    use, measured at 8-20% of a scanned page's time); a workbench job runs, and starts
    Tesseract, without it."""
    from distributed import Client

    from workbench import cluster

    # defined here, so that Dask sends them by value (the worker cannot import tests)
    def worker_variable() -> str | None:
        return os.environ.get(MALLOC_VAR)

    def environment_seen(*_job: Any) -> dict[str, str | None]:
        """In pipeline._worker_call's place: the variable as the worker and a program it
        starts (as it starts Tesseract) see it."""
        child = subprocess.run(["env"], capture_output=True, text=True, check=True).stdout
        seen = [line.split("=", 1)[1] for line in child.splitlines() if line.startswith(MALLOC_VAR)]
        return {"worker": os.environ.get(MALLOC_VAR), "child": seen[0] if seen else None}

    address = local_cluster.start_scheduler()
    local_cluster.add_worker()
    client = Client(address, timeout=30, set_as_default=False)
    try:
        assert client.submit(worker_variable, pure=False).result(timeout=60) == "65536"
        seen = client.submit(
            cluster._cluster_call, environment_seen, 60.0, 0, "path", "1", None, (), None,
            pure=False,
        ).result(timeout=60)  # fmt: skip
    finally:
        client.close()
    assert seen == {"worker": None, "child": None}


@pytest.mark.parametrize("word", ["HANGME", "CRASHME"])
def test_a_page_the_engine_hangs_or_crashes_on_is_an_ocr_error_as_locally(
    local_cluster: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, word: str
) -> None:
    """Tesseract hanging (past the page's OCR budget) or crashing inside a Dask worker:
    the page is kept without text as an OCR failure, the rest of its file and the batch
    go in (tests/test_ocr_failures.py shows the same locally)."""
    from tests.test_ocr_failures import engine_double, make_pdf, text_image

    folder = tmp_path / "in"
    folder.mkdir()
    frames = [text_image("GOOD MORNING"), text_image(f"{word} PLEASE"), text_image("GOOD NIGHT")]
    frames[0].save(folder / "a-scan.tif", save_all=True, append_images=frames[1:], dpi=(300, 300))
    make_pdf(folder / "b.pdf", 1, "born digital")
    monkeypatch.setenv("WORKBENCH_PAGE_TIMEOUT", "2")
    address = local_cluster.start_scheduler()
    double = engine_double(tmp_path / "double", ocr_timeout=2.0)
    for _ in range(2):
        local_cluster.add_worker(env=double)
    with Case.open(tmp_path / "case", create=True) as case:
        report = ingest(case, [str(folder)], lang="eng", cluster=address)
    assert report.failures == [] and report.files_ingested == 2
    db = sqlite3.connect(tmp_path / "case" / "workbench.sqlite")
    try:
        rows = db.execute("SELECT page_id, text_source, error FROM pages ORDER BY id").fetchall()
    finally:
        db.close()
    assert [(r[0], r[1]) for r in rows] == [
        ("WB-000001", "ocr"), ("WB-000002", "none"), ("WB-000003", "ocr"), ("WB-000004", "layer"),
    ]  # fmt: skip
    expected = "did not finish" if word == "HANGME" else "crashed"
    assert rows[1][2].startswith("OCR failed: Tesseract ") and expected in rows[1][2]
