"""Faults a newsroom laptop meets, each injected for real.

A full disk is a small tmpfs holding the case; a read-only drive is a tmpfs remounted
read-only; a damaged database or index is one whose bytes were really overwritten,
truncated or deleted. Mounting needs root: without it (or where ``mount`` is refused)
those tests skip and say why.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import subprocess_env
from workbench import index, review
from workbench.cli import main
from workbench.errors import DiskFullError
from workbench.store import DATABASE_NAME, Case

# ----- helpers ------------------------------------------------------------------------


def _mount(path: Path, options: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs to inject the fault needs root")
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")


def _remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def _unmount(path: Path) -> None:
    index.close_searchers()  # a cached searcher keeps index files open (and mapped)
    if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[Path, str], Path]]:
    """Mount a tmpfs of a given size at a path; every mount is undone at the end."""
    mounted: list[Path] = []

    def mount(path: Path, size: str) -> Path:
        _mount(path, f"size={size}")
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        _unmount(path)


def run_cli(case: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command in its own process (workers, exit status, stderr as a user sees)."""
    return subprocess.run(
        [sys.executable, "-m", "workbench", "--case", str(case), *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        check=False,
        timeout=300,
    )


def invoke(case: Path, *args: str):
    """The command in this process (fast), stdout and stderr apart."""
    env = {"WORKBENCH_CASE": str(case), "WORKBENCH_REVIEWER": ""}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def one_error_line(stderr: str) -> str:
    """stderr holds exactly one line, an ``error:`` line, and no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def page_identity(case_dir: Path) -> list[tuple]:
    """What 'the same pages' means: id, file, page number and page hash, in id order."""
    with Case.open(case_dir) as case:
        return [
            (r["page_id"], r["source_path"], r["page_number"], r["page_sha256"])
            for r in case.page_rows()
        ]


def integrity(case_dir: Path) -> str:
    connection = sqlite3.connect(case_dir / DATABASE_NAME)
    try:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()


@pytest.fixture(scope="module")
def born_digital(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 120-page born-digital trove (on normal disk): about 1 MB of case once ingested."""
    out = tmp_path_factory.mktemp("faults-trove")
    subprocess.run(
        [sys.executable, "-m", "fixtures.generate", str(out), "--pages", "120", "--scanned", "0"],
        check=True,
        capture_output=True,
        env=subprocess_env(),
        cwd=Path(__file__).resolve().parent.parent,
    )
    return out / "born_digital"


@pytest.fixture(scope="module")
def reference_case(born_digital: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same files ingested, uninterrupted, into a case on normal disk."""
    case_dir = tmp_path_factory.mktemp("faults-reference") / "case"
    done = run_cli(case_dir, "ingest", str(born_digital), "--jobs", "2", "--quiet")
    assert done.returncode == 0, done.stderr
    return case_dir


# ----- the disk fills during an ingest ------------------------------------------------


def test_disk_full_during_ingest_one_line_then_resume(
    born_digital: Path, reference_case: Path, tmpfs, tmp_path: Path
) -> None:
    """SQLite's 'database or disk is full' mid-ingest: one line, exit 7, nothing damaged;
    after space is freed the same command ends with exactly the uninterrupted pages."""
    drive = tmpfs(tmp_path / "drive", "640k")
    case_dir = drive / "case"
    failed = run_cli(case_dir, "ingest", str(born_digital), "--jobs", "2", "--quiet")
    assert failed.returncode == DiskFullError.exit_code == 7, failed.stderr
    line = one_error_line(failed.stderr)
    assert "disk is full" in line and str(case_dir) in line, line
    assert "free" in line and "run the same command again" in line, line
    assert integrity(case_dir) == "ok"
    reference = page_identity(reference_case)
    partial = page_identity(case_dir)
    assert 0 < len(partial) < len(reference), "the disk must fill in the middle of the ingest"
    assert partial == reference[: len(partial)]

    _remount(drive, "size=16m")  # space freed
    again = run_cli(case_dir, "ingest", str(born_digital), "--jobs", "2", "--quiet")
    assert again.returncode == 0, again.stderr
    assert integrity(case_dir) == "ok"
    resumed = page_identity(case_dir)
    assert resumed == reference
    assert len({row[0] for row in resumed}) == len(resumed)  # no page twice
    with Case.open(case_dir) as case:
        assert index.pending(case) == 0
        assert index.search(case, "*", limit=1).total == len(reference)


def test_disk_full_while_writing_the_index_one_line(
    born_digital: Path, reference_case: Path, tmpfs, tmp_path: Path
) -> None:
    """Whoosh's ENOSPC (the index on a full drive) is the same one line and exit status;
    the pages are kept, and the same command after space is freed completes the index."""
    case_dir = tmp_path / "case"
    with Case.open(case_dir, create=True) as case:
        folder = index.index_dir(case)
    tmpfs(folder, "64k")
    failed = run_cli(case_dir, "ingest", str(born_digital), "--jobs", "2", "--quiet")
    assert failed.returncode == 7, failed.stderr
    line = one_error_line(failed.stderr)
    assert "disk is full" in line and str(folder) in line, line
    assert "run the same command again" in line, line
    assert integrity(case_dir) == "ok"

    _remount(folder, "size=16m")
    again = run_cli(case_dir, "ingest", str(born_digital), "--jobs", "2", "--quiet")
    assert again.returncode == 0, again.stderr
    assert page_identity(case_dir) == page_identity(reference_case)
    with Case.open(case_dir) as case:
        assert index.pending(case) == 0
        assert index.search(case, "*", limit=1).total == len(page_identity(reference_case))


def test_export_to_a_full_or_read_only_drive_names_that_drive(
    reference_case: Path, tmpfs, tmp_path: Path
) -> None:
    """The line names the export's folder, not the case's (whose drive has room)."""
    drive = tmpfs(tmp_path / "usb", "16k")
    output = drive / "pages.csv"
    full = invoke(reference_case, "export", "--format", "csv", "-o", str(output))
    assert full.exit_code == 7, (full.stdout, full.stderr)
    line = one_error_line(full.stderr)
    assert line.startswith(f"error: {drive}: the disk is full"), line
    assert not output.exists() and not list(drive.iterdir())  # nothing half-written
    _remount(drive, "ro")
    refused = invoke(reference_case, "export", "--format", "csv", "-o", str(output))
    assert refused.exit_code == 2, (refused.stdout, refused.stderr)
    line = one_error_line(refused.stderr)
    assert line.startswith(f"error: {drive}: the drive is read-only"), line


# ----- the case is on a read-only drive -----------------------------------------------


@pytest.fixture(scope="module")
def read_only_case(
    born_digital: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, dict[str, str]]]:
    """A reviewed case on a tmpfs remounted read-only, with what its reads printed before."""
    drive = tmp_path_factory.mktemp("faults-ro") / "drive"
    _mount(drive, "size=32m")
    try:
        case_dir = drive / "case"
        done = run_cli(case_dir, "ingest", str(born_digital), "--jobs", "2", "--quiet")
        assert done.returncode == 0, done.stderr
        for args in (
            ("config", "reviewer", "Alice"),
            ("mark", "WB-000001..WB-000003", "--status", "verified", "--note", "seen"),
            ("doc", "add", "--pages", "WB-000001..WB-000002", "--title", "T1"),
        ):
            assert invoke(case_dir, *args).exit_code == 0
        # a change the index has not seen yet (marked, not synced)
        with Case.open(case_dir) as case:
            review.mark(case, ["WB-000004"], "disputed", "Alice", None)
        before = {
            name: invoke(case_dir, *args).stdout
            for name, args in READ_COMMANDS.items()
            if not name.startswith("export")
        }
        index.close_searchers()
        _remount(drive, "ro")
        yield case_dir, before
    finally:
        _unmount(drive)


READ_COMMANDS: dict[str, tuple[str, ...]] = {
    "status": ("status",),
    "status-json": ("status", "--json"),
    "pages": ("pages", "--json"),
    "show": ("show", "WB-000002", "--json"),
    "sources": ("sources", "--json"),
    "docs": ("docs", "--json"),
    "suggest": ("doc", "suggest", "--json"),
    "config": ("config", "reviewer"),
    "log": ("log", "verify"),
    "findings": ("findings", "--json"),
}

WRITE_COMMANDS: dict[str, tuple[str, ...]] = {
    "ingest": ("ingest", "."),
    "init": ("init", "--prefix", "XY"),
    "mark": ("mark", "WB-000005", "--status", "verified"),
    "mark-query": ("mark", "--query", "status:verified", "--status", "disputed", "--yes"),
    "note": ("note", "WB-000005", "a note"),
    "doc-add": ("doc", "add", "--pages", "WB-000005..WB-000006"),
    "doc-accept": ("doc", "suggest", "--accept"),
    "config": ("config", "reviewer", "Bob"),
    "index": ("index",),
    "index-rebuild": ("index", "--rebuild"),
    "check": ("check",),
    "dismiss": ("finding", "dismiss", "F-000000000000", "--note", "x"),
}


@pytest.mark.parametrize("name", list(READ_COMMANDS))
def test_read_only_case_reads_work(read_only_case, name: str) -> None:
    case_dir, before = read_only_case
    result = invoke(case_dir, *READ_COMMANDS[name])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == before[name]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", list(WRITE_COMMANDS))
def test_read_only_case_writes_refused_in_one_line(read_only_case, name: str) -> None:
    case_dir, _ = read_only_case
    result = invoke(case_dir, *WRITE_COMMANDS[name])
    assert result.exit_code == 2, (result.stdout, result.stderr)
    line = one_error_line(result.stderr)
    assert "read-only" in line and str(case_dir) in line, line


def test_read_only_case_search_uses_the_index_as_it_is(read_only_case) -> None:
    """No sync on a read-only case: it answers from the index there and says it lags."""
    case_dir, _ = read_only_case
    result = invoke(case_dir, "search", "status:verified", "--json")
    assert result.exit_code == 0, result.stderr
    hits = [json.loads(line)["page_id"] for line in result.stdout.splitlines()]
    assert sorted(hits) == ["WB-000001", "WB-000002", "WB-000003"]
    [warning] = [line for line in result.stderr.splitlines() if line.strip()]
    assert warning.startswith("warning: ") and "read-only" in warning, warning
    assert "1 page change" in warning, warning


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "report", "manifest"])
def test_read_only_case_exports_to_a_writable_place(
    read_only_case, tmp_path: Path, fmt: str
) -> None:
    case_dir, _ = read_only_case
    output = tmp_path / f"out.{fmt}"
    result = invoke(case_dir, "export", "--format", fmt, "-o", str(output))
    assert result.exit_code == 0, result.stderr
    assert output.stat().st_size > 0


@pytest.mark.parametrize("shm", ["kept", "lost"])
def test_read_only_case_with_an_unfinished_wal_still_reads_it(
    born_digital: Path, tmpfs, tmp_path: Path, shm: str
) -> None:
    """A case whose last writer died (its -wal left behind, with or without its -shm)
    reads with its last commits on a read-only drive: ``immutable=1`` alone would
    silently drop them."""
    drive = tmpfs(tmp_path / "drive", "16m")
    case_dir = drive / "case"
    files = sorted(born_digital.rglob("*.pdf"))[:2]
    assert run_cli(case_dir, "ingest", *map(str, files), "--quiet").returncode == 0
    script = (
        "import os, sys\n"
        "from workbench.store import Case\n"
        "from workbench import review\n"
        "case = Case.open(sys.argv[1])\n"
        "review.mark(case, ['WB-000001'], 'illegible', 'Alice', 'last words')\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(case_dir)], check=True, env=subprocess_env())
    assert (case_dir / (DATABASE_NAME + "-wal")).stat().st_size > 0
    if shm == "lost":
        (case_dir / (DATABASE_NAME + "-shm")).unlink()
    _remount(drive, "ro")
    result = invoke(case_dir, "show", "WB-000001", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "illegible"
    assert invoke(case_dir, "log", "verify").exit_code == 0


def test_read_only_case_without_its_index_says_so_in_one_line(
    born_digital: Path, tmpfs, tmp_path: Path
) -> None:
    """Nothing can be rebuilt on a read-only drive: search says why in one line (exit 2),
    and the commands that do not need the index still work."""
    import shutil

    drive = tmpfs(tmp_path / "drive", "16m")
    case_dir = drive / "case"
    files = sorted(born_digital.rglob("*.pdf"))[:2]
    assert run_cli(case_dir, "ingest", *map(str, files), "--quiet").returncode == 0
    with Case.open(case_dir) as case:
        folder = index.index_dir(case)
    shutil.rmtree(folder)
    _remount(drive, "ro")
    result = invoke(case_dir, "search", "oil")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    line = one_error_line(result.stderr)
    assert str(folder) in line and "missing" in line and "read-only" in line, line
    assert invoke(case_dir, "pages").exit_code == 0


# ----- a damaged database -------------------------------------------------------------


@pytest.fixture
def small_case(born_digital: Path, reference_case: Path, tmp_path: Path) -> Path:
    """A copy of the reference case (closed, so its WAL is folded into the file)."""
    import shutil

    case_dir = tmp_path / "case"
    shutil.copytree(reference_case, case_dir)
    assert not (case_dir / (DATABASE_NAME + "-wal")).exists()
    return case_dir


def _garbage(database: Path) -> None:
    database.write_bytes(os.urandom(database.stat().st_size))


def _truncated(database: Path) -> None:
    with database.open("r+b") as handle:
        handle.truncate(database.stat().st_size // 2)


def _empty(database: Path) -> None:
    database.write_bytes(b"")


def _damaged_page(database: Path) -> None:
    """Overwrite the root page of the ``pages`` table: every read of pages meets it."""
    connection = sqlite3.connect(database)
    root, size = connection.execute(
        "SELECT rootpage, (SELECT page_size FROM pragma_page_size) FROM sqlite_master"
        " WHERE name = 'pages'"
    ).fetchone()
    connection.close()
    with database.open("r+b") as handle:
        handle.seek((root - 1) * size + 8)
        handle.write(b"\xff\x13" * ((size - 8) // 2))


@pytest.mark.parametrize("damage", [_garbage, _truncated, _empty, _damaged_page])
@pytest.mark.parametrize(
    "args", [("status",), ("pages",), ("search", "oil"), ("ingest", "/nonexistent")]
)
def test_damaged_database_is_one_line_naming_the_file(
    small_case: Path, damage, args: tuple[str, ...]
) -> None:
    database = small_case / DATABASE_NAME
    damage(database)
    result = invoke(small_case, *args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    line = one_error_line(result.stderr)
    assert str(database) in line, line
    assert "backup" in line, line


def test_damaged_database_in_a_subprocess_never_shows_a_traceback(small_case: Path) -> None:
    _damaged_page(small_case / DATABASE_NAME)
    done = run_cli(small_case, "pages")
    assert done.returncode == 2
    assert str(small_case / DATABASE_NAME) in one_error_line(done.stderr)


# ----- a deleted or damaged search index ----------------------------------------------


def _delete_index(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder)


def _drop_toc(folder: Path) -> None:
    for toc in folder.glob("_MAIN_*.toc"):
        toc.unlink()


def _truncate_segments(folder: Path) -> None:
    for segment in folder.glob("*.seg"):
        with segment.open("r+b") as handle:
            handle.truncate(segment.stat().st_size // 3)


def _garbage_index(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_file() and path.stat().st_size:
            path.write_bytes(os.urandom(path.stat().st_size))


INDEX_DAMAGE = {
    "deleted": (_delete_index, "missing"),
    "toc-missing": (_drop_toc, "damaged"),
    "segments-truncated": (_truncate_segments, "damaged"),
    "garbage": (_garbage_index, "damaged"),
}


@pytest.mark.parametrize("damage", list(INDEX_DAMAGE))
def test_damaged_index_rebuilt_on_search(small_case: Path, reference_case: Path, damage) -> None:
    action, word = INDEX_DAMAGE[damage]
    total = len(page_identity(reference_case))
    with Case.open(small_case) as case:
        folder = index.index_dir(case)
        expected = index.search(case, "status:unreviewed", limit=1).total
    index.close_searchers()
    assert expected == total
    action(folder)
    result = invoke(small_case, "search", "status:unreviewed")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"{total} page(s) match"), result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        f"warning: {folder}: the search index was {word}; rebuilt from the case ({total} pages)"
    ], result.stderr


@pytest.mark.parametrize("damage", ["deleted", "garbage"])
def test_damaged_index_rebuilt_on_ingest(
    small_case: Path, reference_case: Path, born_digital: Path, damage
) -> None:
    action, word = INDEX_DAMAGE[damage]
    total = len(page_identity(reference_case))
    with Case.open(small_case) as case:
        folder = index.index_dir(case)
    action(folder)
    done = run_cli(small_case, "ingest", str(born_digital), "--quiet")
    assert done.returncode == 0, done.stderr
    expected = (
        f"warning: {folder}: the search index was {word}; rebuilt from the case ({total} pages)"
    )
    assert expected in done.stderr.splitlines(), done.stderr
    with Case.open(small_case) as case:
        assert index.search(case, "status:unreviewed", limit=1).total == total


# ----- the app meets the same faults where the case opens -----------------------------


def test_app_with_a_damaged_database_exits_with_the_line(small_case: Path) -> None:
    import asyncio

    from workbench.tui.app import make_app

    _garbage(small_case / DATABASE_NAME)
    app = make_app(str(small_case))
    messages: list[object] = []
    real_exit = app.exit

    def exit_recording(*args: object, **kwargs: object) -> None:
        messages.append(kwargs.get("message"))
        real_exit(*args, **kwargs)

    app.exit = exit_recording  # type: ignore[method-assign]

    async def drive() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()

    asyncio.run(drive())
    [shown] = messages
    assert str(small_case / DATABASE_NAME) in str(shown) and "backup" in str(shown), shown


def test_app_rebuilds_a_deleted_index_and_says_so(small_case: Path, reference_case: Path) -> None:
    import asyncio

    from workbench.tui.app import make_app

    total = len(page_identity(reference_case))
    with Case.open(small_case) as case:
        folder = index.index_dir(case)
    _delete_index(folder)
    app = make_app(str(small_case))

    async def drive() -> list[str]:
        async with app.run_test(size=(100, 30)) as pilot:
            for _ in range(100):
                await pilot.pause(0.05)
                shown = [str(n.message) for n in app._notifications]
                if any("rebuilt" in m for m in shown):
                    return shown
            return [str(n.message) for n in app._notifications]

    shown = asyncio.run(drive())
    assert f"{folder}: the search index was missing; rebuilt from the case ({total} pages)" in shown
    with Case.open(small_case) as case:
        assert index.search(case, "status:unreviewed", limit=1).total == total


def _postings_extent(segment: Path) -> tuple[int, int]:
    """(offset, length) of the postings file inside a Whoosh compound segment."""
    from whoosh.filedb.compound import CompoundStorage
    from whoosh.filedb.filestore import FileStorage

    compound = CompoundStorage(
        FileStorage(str(segment.parent)).open_file(segment.name), use_mmap=False
    )
    try:
        [entry] = [entry for name, entry in compound._dir.items() if name.endswith(".pst")]
    finally:
        compound.close()
    return entry["offset"], entry["length"]


def _search_fails(case_dir: Path, query: str) -> bool:
    """Does a search meet damage in the index (read as it is, nothing rebuilt)?"""
    try:
        with Case.open(case_dir) as case:
            index.search(case, query)
    except index.IndexDamagedError:
        return True
    finally:
        index.close_searchers()
    return False


def test_damage_inside_a_segment_met_by_a_search_rebuilds(
    small_case: Path, reference_case: Path
) -> None:
    """Bytes overwritten in the middle of a segment pass the open-time check and show
    only when a search reads them ("Block tag error"): rebuilt, then answered."""
    with Case.open(reference_case) as case:
        expected = index.search(case, "oil", limit=1).total
    with Case.open(small_case) as case:
        folder = index.index_dir(case)
    index.close_searchers()
    # the largest segment (an ingest's checks may add a small second one)
    segment = max(folder.glob("*.seg"), key=lambda path: path.stat().st_size)
    # Where each part of a segment lies depends on how the ingest's commits fell and on
    # the layout (v6's word pairs fill half of it), so the damage goes where the postings
    # are, found from the segment's own directory: the open-time check reads the
    # lexicons, not the postings; a search for "oil" reads them.
    offset, length = _postings_extent(segment)
    with segment.open("r+b") as handle:
        handle.seek(offset)
        handle.write(b"\xff" * length)
    assert index._index_problem(folder) is None
    assert _search_fails(small_case, "oil")
    result = invoke(small_case, "search", "oil")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"{expected} page(s) match"), result.stdout
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith(f"warning: {folder}: the search index was damaged (")
    assert line.endswith(f"rebuilt from the case ({len(page_identity(reference_case))} pages)")


def test_app_on_a_read_only_case_opens_and_refuses_a_mark_in_a_notification(
    read_only_case,
) -> None:
    import asyncio

    from workbench.tui.app import make_app

    case_dir, before = read_only_case
    app = make_app(str(case_dir))

    async def drive() -> list[str]:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await pilot.press("v")
            for _ in range(40):
                await pilot.pause(0.05)
                if any("read-only" in str(n.message) for n in app._notifications):
                    break
            return [str(n.message) for n in app._notifications]

    shown = asyncio.run(drive())
    assert any("read-only" in m for m in shown), shown
    assert app.case is None or app.case.read_only
    assert invoke(case_dir, "pages", "--json").stdout == before["pages"]  # nothing changed
