"""Signed checkpoints in the review log (ssh-keygen -Y), and verifying them with and
without a case, an allowed-signers file, after cuts and rewrites."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench import review
from workbench.cli import main
from workbench.store import DATABASE_NAME

pytestmark = pytest.mark.skipif(
    shutil.which("ssh-keygen") is None, reason="ssh-keygen (openssh-client) is not installed"
)


def make_key(folder: Path, name: str) -> tuple[Path, Path]:
    """A throwaway ed25519 key (no passphrase) and an allowed-signers file naming it."""
    key = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True
    )
    allowed = folder / f"{name}.allowed"
    public = (folder / f"{name}.pub").read_text(encoding="ascii").strip()
    allowed.write_text(f'{name}@paper namespaces="workbench-log" {public}\n', encoding="ascii")
    return key, allowed


def run(case: Path, *args: str, reviewer: str = "bob"):
    env = {"WORKBENCH_CASE": str(case), "WORKBENCH_REVIEWER": reviewer}
    return CliRunner().invoke(main, list(args), env=env)


def rehash(lines: list[dict]) -> list[dict]:
    """Recompute every event's prev_hash and hash, as a forger who rewrote the log would."""
    prev = review.GENESIS_HASH
    out = []
    for number, event in enumerate(lines, start=1):
        event = dict(event, seq=number, prev_hash=prev)
        event["hash"] = review.event_hash(prev, event)
        prev = event["hash"]
        out.append(event)
    return out


def read_export(path: Path) -> tuple[list[dict], list[dict]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [r for r in rows if "record" not in r], [r for r in rows if "record" in r]


def write_export(path: Path, events: list[dict], records: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in [*events, *records]:
            handle.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")


@pytest.fixture(scope="module")
def signed_case(small_trove: Path, tmp_path_factory: pytest.TempPathFactory):
    """A case with marks, a signed checkpoint, a mark after it, and its JSONL export."""
    folder = tmp_path_factory.mktemp("signed")
    key, allowed = make_key(folder, "bob")
    case = folder / "case"
    pdfs = sorted(str(p) for p in (small_trove / "born_digital").rglob("*.pdf"))[:2]
    assert run(case, "ingest", *pdfs, "--quiet", "--no-check").exit_code == 0
    assert run(case, "mark", "WB-000001..WB-000003", "--status", "verified").exit_code == 0
    signed = run(case, "log", "sign", "--key", str(key))
    assert signed.exit_code == 0, signed.output
    assert run(case, "mark", "WB-000004", "--status", "disputed", "--note", "x").exit_code == 0
    log = folder / "b.jsonl"
    assert run(case, "export", "--format", "jsonl", "-o", str(log)).exit_code == 0
    return folder, case, key, allowed, log


def test_sign_then_verify_names_the_signer(signed_case) -> None:
    folder, case, key, allowed, log = signed_case
    plain = run(case, "log", "verify")
    assert plain.exit_code == 0, plain.output
    assert "checkpoint #4" in plain.output and "signer unverified" in plain.output
    named = run(case, "log", "verify", "--allowed-signers", str(allowed))
    assert named.exit_code == 0, named.output
    assert "checkpoint #4 by bob@paper" in named.output
    assert "1 event(s) after the last checkpoint" in named.output
    exported = run(case, "log", "verify", "--file", str(log), "--allowed-signers", str(allowed))
    assert exported.exit_code == 0, exported.output
    assert "by bob@paper" in exported.output
    events, records = read_export(log)
    checkpoint = events[3]
    assert checkpoint["kind"] == "checkpoint"
    assert checkpoint["payload"]["events"] == 3
    assert checkpoint["payload"]["head"] == events[2]["hash"]
    assert "BEGIN SSH SIGNATURE" in checkpoint["payload"]["signature"]
    assert {"record": "checkpoint", "seq": 4, "hash": checkpoint["hash"]} in records


def test_a_key_not_in_allowed_signers_is_refused(signed_case) -> None:
    folder, case, key, allowed, log = signed_case
    _, other_allowed = make_key(folder, "mallory")
    result = run(case, "log", "verify", "--file", str(log), "--allowed-signers", str(other_allowed))
    assert result.exit_code == 6
    assert "not in" in result.output
    result = run(case, "log", "verify", "--allowed-signers", str(other_allowed))
    assert result.exit_code == 6


def test_a_signature_that_does_not_match_is_refused(signed_case, tmp_path: Path) -> None:
    """The checkpoint's time changed and every hash recomputed: the chain holds, the
    signature does not."""
    folder, case, key, allowed, log = signed_case
    events, records = read_export(log)
    events[3]["at"] = "2020-01-01T00:00:00Z"
    events = rehash(events)
    records = [
        dict(r, hash=events[3]["hash"]) if r["record"] == "checkpoint" else r for r in records
    ]
    forged = tmp_path / "forged.jsonl"
    write_export(forged, events, records)
    result = run(case, "log", "verify", "--file", str(forged))
    assert result.exit_code == 6
    assert "checkpoint #4" in result.output and "does not match" in result.output


def test_a_log_cut_short_after_a_checkpoint_is_refused(signed_case, tmp_path: Path) -> None:
    folder, case, key, allowed, log = signed_case
    events, records = read_export(log)
    cut = tmp_path / "cut.jsonl"
    write_export(cut, events[:3], records)
    result = run(case, "log", "verify", "--file", str(cut))
    assert result.exit_code == 6
    assert "cut short" in result.output

    copy = tmp_path / "case"
    shutil.copytree(case, copy)
    db = sqlite3.connect(copy / DATABASE_NAME, isolation_level=None)
    db.execute("DROP TRIGGER review_events_no_delete")
    db.execute("DELETE FROM review_events WHERE seq >= 4")
    db.execute(
        "DELETE FROM page_review WHERE page_row ="
        " (SELECT id FROM pages WHERE page_id = 'WB-000004')"
    )
    db.close()
    result = run(copy, "log", "verify")
    assert result.exit_code == 6
    assert "signed checkpoint #4 is missing" in result.output


def test_mark_signs_every_n_events(signed_case, tmp_path: Path) -> None:
    folder, case, key, allowed, log = signed_case
    copy = tmp_path / "case"
    shutil.copytree(case, copy)
    assert run(copy, "config", "signing-key", str(key)).exit_code == 0
    assert run(copy, "config", "sign-every", "2").exit_code == 0
    assert run(copy, "config", "sign-every", "often").exit_code == 2
    first = run(copy, "mark", "WB-000005", "--status", "verified")
    assert "signed checkpoint" in first.output  # 1 event after #4 + this one
    second = run(copy, "mark", "WB-000006", "--status", "verified")
    assert "signed checkpoint" not in second.output
    result = run(copy, "log", "verify", "--allowed-signers", str(allowed))
    assert result.exit_code == 0, result.output
    assert result.output.count("by bob@paper") == 2


def test_mark_signs_every_n_minutes(signed_case, tmp_path: Path, monkeypatch) -> None:
    import datetime

    from workbench import signing

    folder, case, key, allowed, log = signed_case
    copy = tmp_path / "case"
    shutil.copytree(case, copy)
    assert run(copy, "config", "signing-key", str(key)).exit_code == 0
    assert run(copy, "config", "sign-every", "10m").exit_code == 0
    assert run(copy, "config", "sign-every").output.strip() == "10m"
    assert "signed checkpoint" not in run(copy, "mark", "WB-000005", "--status", "verified").output
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=11)
    monkeypatch.setattr(signing, "_clock", lambda: later)
    assert "signed checkpoint" in run(copy, "mark", "WB-000006", "--status", "verified").output
    assert run(copy, "config", "signing-key", "none").exit_code == 0
    assert "signed checkpoint" not in run(copy, "mark", "WB-000007", "--status", "verified").output


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_signing_verifying_and_importing_open_no_internet_socket(
    signed_case, tmp_path: Path
) -> None:
    """ssh-keygen runs as a child process: strace -f sees it too."""
    import sys

    from tests.conftest import subprocess_env
    from tests.test_safety import _internet_sockets

    folder, case, key, allowed, log = signed_case
    copy = tmp_path / "case"
    shutil.copytree(case, copy)
    trace = tmp_path / "strace.log"
    env = dict(subprocess_env(), WORKBENCH_CASE=str(copy), WORKBENCH_REVIEWER="bob")
    for args in (
        ["log", "sign", "--key", str(key)],
        ["log", "verify", "--allowed-signers", str(allowed)],
        ["log", "import", str(log), "--name", "Paper B", "--allowed-signers", str(allowed)],
    ):
        command = [
            "strace", "-f", "-qq", "-e", "trace=socket,connect", "-o", str(trace),
            sys.executable, "-m", "workbench", *args,
        ]  # fmt: skip
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        offending = _internet_sockets(trace)
        assert offending == [], "network sockets opened:\n" + "\n".join(offending[:20])
