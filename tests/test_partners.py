"""Two newsrooms: importing a partner's signed log, matching pages by content, agreement
page by page, and every way a partner's log is refused."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.test_signing import make_key, read_export, rehash, run, write_export
from workbench import partners
from workbench.store import DATABASE_NAME, Case

pytestmark = pytest.mark.skipif(
    shutil.which("ssh-keygen") is None, reason="ssh-keygen (openssh-client) is not installed"
)


def pdfs(trove: Path) -> list[str]:
    return sorted(str(p) for p in (trove / "born_digital").rglob("*.pdf"))


def page_keys(case_dir: Path) -> dict[str, tuple[str, int]]:
    """page id -> (file SHA-256, page number): what both newsrooms share."""
    with Case.open(case_dir) as case:
        return {
            row[0]: (row[1], row[2])
            for row in case.db.execute(
                "SELECT p.page_id, s.sha256, p.page_number FROM pages p"
                " JOIN sources s ON s.id = p.source_id"
            )
        }


@pytest.fixture(scope="module")
def newsrooms(small_trove: Path, tmp_path_factory: pytest.TempPathFactory):
    """A ingests four files, B ingests four in the other order (each has one the other
    lacks); both mark pages; B signs and exports."""
    folder = tmp_path_factory.mktemp("newsrooms")
    files = pdfs(small_trove)
    assert len(files) >= 4
    a, b = folder / "a", folder / "b"
    assert run(a, "ingest", *files[:3], "--quiet", "--no-check", reviewer="alice").exit_code == 0
    for path in reversed(files[1:4]):  # one file at a time: B's page ids follow its own order
        assert run(b, "ingest", path, "--quiet", "--no-check").exit_code == 0
    keys_a, keys_b = page_keys(a), page_keys(b)
    b_by_key = {key: page for page, key in keys_b.items()}
    shared = sorted(p for p, key in keys_a.items() if key in b_by_key)
    assert len(shared) >= 6
    only_a = sorted(p for p, key in keys_a.items() if key not in b_by_key)
    twin = {p: b_by_key[keys_a[p]] for p in shared}
    # A: verified, verified, disputed, verified(only A), and one of A's own pages
    assert (
        run(a, "mark", shared[0], shared[1], "--status", "verified", reviewer="alice").exit_code
        == 0
    )
    assert run(a, "mark", shared[2], "--status", "disputed", reviewer="alice").exit_code == 0
    assert run(a, "mark", shared[3], "--status", "verified", reviewer="alice").exit_code == 0
    assert run(a, "mark", only_a[0], "--status", "illegible", reviewer="alice").exit_code == 0
    # B: agrees on shared[0], disagrees on shared[1], agrees disputed on shared[2],
    # reviews shared[4] that A did not, and one page A does not have
    key, allowed = make_key(folder, "bob")
    only_b = sorted(p for p, k in keys_b.items() if k not in set(keys_a.values()))
    assert run(b, "mark", twin[shared[0]], "--status", "verified").exit_code == 0
    assert run(b, "mark", twin[shared[1]], "--status", "disputed", "--note", "seal").exit_code == 0
    assert run(b, "mark", twin[shared[2]], "--status", "disputed").exit_code == 0
    assert run(b, "mark", twin[shared[4]], "--status", "verified").exit_code == 0
    assert run(b, "mark", only_b[0], "--status", "verified").exit_code == 0
    assert run(b, "log", "sign", "--key", str(key)).exit_code == 0
    log = folder / "b.jsonl"
    assert run(b, "export", "--format", "jsonl", "-o", str(log)).exit_code == 0
    return {
        "folder": folder,
        "a": a,
        "b": b,
        "key": key,
        "allowed": allowed,
        "log": log,
        "shared": shared,
        "twin": twin,
        "only_a": only_a,
        "only_b": only_b,
    }


def fresh_a(newsrooms, tmp_path: Path) -> Path:
    copy = tmp_path / "a"
    shutil.copytree(newsrooms["a"], copy)
    return copy


def import_(case: Path, log: Path, *extra: str):
    return run(case, "log", "import", str(log), "--name", "Paper B", *extra, reviewer="alice")


def event_count(case: Path) -> int:
    with Case.open(case) as opened:
        return opened.db.execute("SELECT count(*) FROM review_events").fetchone()[0]


def test_agreement_page_by_page(newsrooms, tmp_path: Path) -> None:
    a = fresh_a(newsrooms, tmp_path)
    before = event_count(a)
    result = import_(a, newsrooms["log"], "--allowed-signers", str(newsrooms["allowed"]))
    assert result.exit_code == 0, result.output
    assert "by bob@paper" in result.output
    assert event_count(a) == before + 1  # one import event in our chain, nothing else
    shared, twin = newsrooms["shared"], newsrooms["twin"]
    out = run(a, "agreement", "--json")
    assert out.exit_code == 0, out.output
    pages = [json.loads(line) for line in out.stdout.splitlines()]
    by_id = {p["page_id"]: p for p in pages if p["page_id"]}
    expected = {
        shared[0]: "both_verified",
        shared[1]: "disagree",
        shared[2]: "both_disputed",
        shared[3]: "only_we_reviewed",
        shared[4]: "only_they_reviewed",
        newsrooms["only_a"][0]: "only_ours",
    }
    for page_id, want in expected.items():
        assert by_id[page_id]["agreement"] == {"Paper B": want}, page_id
    for page_id in shared[5:]:
        assert by_id[page_id]["agreement"] == {"Paper B": "neither_reviewed"}
    for page_id in shared:
        assert by_id[page_id]["theirs"]["Paper B"]["page_id"] == twin[page_id]
    theirs = by_id[shared[1]]["theirs"]["Paper B"]
    assert theirs["status"] == "disputed" and theirs["reviewer"] == "bob"
    assert "seal" in theirs["note"] and theirs["time"].endswith("Z")
    assert set(by_id[shared[1]]) >= {"page_id", "page_sha256", "ours", "theirs"}
    assert by_id[shared[1]]["ours"]["status"] == "verified"
    only_theirs = [p for p in pages if p["page_id"] is None]
    assert {p["theirs"]["Paper B"]["page_id"] for p in only_theirs} == {
        p for p in page_keys(newsrooms["b"]) if p not in twin.values()
    }
    assert any(
        p["theirs"]["Paper B"]["page_id"] == newsrooms["only_b"][0]
        and p["theirs"]["Paper B"]["status"] == "verified"
        for p in only_theirs
    )
    with Case.open(a) as case:
        summary = partners.agreement(case, "Paper B").summary["Paper B"]
    assert summary["both_verified"] == 1 and summary["disagree"] == 1
    assert summary["both_disputed"] == 1 and summary["only_we_reviewed"] == 1
    assert summary["only_they_reviewed"] == 1 and summary["only_theirs"] == len(only_theirs)
    assert summary["only_ours"] == len(newsrooms["only_a"])
    text = run(a, "agreement", "--partner", "paper b")
    assert "1 we disagree" in text.output and "we disagree" in text.output
    assert run(a, "agreement", "--partner", "Paper C").exit_code == 2
    # our own log still verifies, and nothing our reviewers decided changed
    verified = run(a, "log", "verify")
    assert verified.exit_code == 0, verified.output


def test_reimport_is_idempotent_and_later_exports_add_only_what_is_new(
    newsrooms, tmp_path: Path
) -> None:
    a = fresh_a(newsrooms, tmp_path)
    assert import_(a, newsrooms["log"]).exit_code == 0
    first = run(a, "agreement", "--json").stdout
    count = event_count(a)
    again = import_(a, newsrooms["log"])
    assert again.exit_code == 0 and "nothing new" in again.output
    assert event_count(a) == count
    assert run(a, "agreement", "--json").stdout == first
    # B goes on: one more mark, a later export
    b = tmp_path / "b"
    shutil.copytree(newsrooms["b"], b)
    target = newsrooms["twin"][newsrooms["shared"][3]]
    assert run(b, "mark", target, "--status", "disputed").exit_code == 0
    later = tmp_path / "b2.jsonl"
    assert run(b, "export", "--format", "jsonl", "-o", str(later)).exit_code == 0
    result = import_(a, later)
    assert result.exit_code == 0, result.output
    assert "(1 new)" in result.output
    with Case.open(a) as case:
        seqs = [r[0] for r in case.db.execute("SELECT seq FROM partner_events ORDER BY seq")]
    assert seqs == list(range(1, 8))  # the earlier six kept, the new one added
    pages = [json.loads(line) for line in run(a, "agreement", "--json").stdout.splitlines()]
    page = next(p for p in pages if p["page_id"] == newsrooms["shared"][3])
    assert page["agreement"] == {"Paper B": "disagree"}
    assert run(a, "log", "verify").exit_code == 0


def _refused(a: Path, log: Path, *extra: str) -> str:
    count = event_count(a)
    result = import_(a, log, *extra)
    assert result.exit_code == 6, result.output
    assert event_count(a) == count
    with Case.open(a) as case:
        assert partners.partner_names(case) in ([], ["Paper B"])
    return result.output


def test_tampered_partner_logs_are_refused(newsrooms, tmp_path: Path) -> None:
    a = fresh_a(newsrooms, tmp_path)
    events, records = read_export(newsrooms["log"])
    allowed = str(newsrooms["allowed"])
    bad = tmp_path / "bad.jsonl"
    # one event removed
    write_export(bad, events[:1] + events[2:], records)
    assert "missing or out of order" in _refused(a, bad)
    # two events reordered
    write_export(bad, [events[1], events[0], *events[2:]], records)
    assert "does not verify" in _refused(a, bad)
    # reordered and every hash recomputed: the chain holds, the signature does not
    # (the checkpoint made to name the new head, its signature kept)
    forged = rehash([events[1], events[0], *events[2:-1]])
    last = dict(events[-1])
    last["payload"] = dict(last["payload"], head=forged[-1]["hash"])
    forged = rehash([*forged, last])
    checkpoint = forged[-1]
    write_export(
        bad,
        forged,
        [dict(r, hash=checkpoint["hash"]) if r["record"] == "checkpoint" else r for r in records],
    )
    assert "does not match" in _refused(a, bad)
    # re-signed by a key not in the allowed signers
    mallory, _ = make_key(tmp_path, "mallory")
    resigned = _resign(forged, mallory)
    write_export(
        bad,
        resigned,
        [dict(r, hash=resigned[-1]["hash"]) if r["record"] == "checkpoint" else r for r in records],
    )
    assert "not in" in _refused(a, bad, "--allowed-signers", allowed)
    # cut short after the checkpoint (its record kept)
    write_export(bad, events[:-1], records)
    assert "cut short" in _refused(a, bad)
    # cut short with the record too: a valid shorter chain, but nothing signed in it
    write_export(bad, events[:-1], [r for r in records if r["record"] != "checkpoint"])
    assert "no signed checkpoint" in _refused(a, bad, "--allowed-signers", allowed)
    assert run(a, "log", "verify").exit_code == 0


def _resign(events: list[dict], key: Path) -> list[dict]:
    """Sign the last (checkpoint) event again with another key, as a forger would."""
    from workbench import signing

    checkpoint = dict(events[-1])
    message = signing.checkpoint_message(
        events[-2]["hash"], len(events) - 1, checkpoint["at"], checkpoint["reviewer"]
    )
    signature = signing.sign_message(key, message)
    key_line = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(key)], capture_output=True, text=True, check=True
    ).stdout
    checkpoint["payload"] = dict(
        checkpoint["payload"],
        signature=signature,
        key=f"ED25519 key {key_line.split()[1]}",
        head=events[-2]["hash"],
        events=len(events) - 1,
    )
    return rehash([*events[:-1], checkpoint])


def test_a_rewritten_history_is_refused_naming_both_heads(newsrooms, tmp_path: Path) -> None:
    a = fresh_a(newsrooms, tmp_path)
    assert import_(a, newsrooms["log"]).exit_code == 0
    events, records = read_export(newsrooms["log"])
    head = events[-1]["hash"]
    # B rewrites a verdict and recomputes every hash, dropping the checkpoint
    rewritten = [dict(e) for e in events[:-1]]
    rewritten[1]["new_status"] = "verified"
    rewritten = rehash(rewritten)
    other = tmp_path / "rewritten.jsonl"
    write_export(other, rewritten, [r for r in records if r["record"] != "checkpoint"])
    output = _refused(a, other)
    assert "rewrote history" in output
    assert head in output and rewritten[-1]["hash"] in output


def test_pages_match_by_file_and_page_number_when_fingerprints_differ(
    newsrooms, tmp_path: Path
) -> None:
    """A partner on another fingerprint version: pages still match by file SHA-256 and
    page number, never by comparing fingerprints of different versions."""
    a = fresh_a(newsrooms, tmp_path)
    events, records = read_export(newsrooms["log"])
    moved = [dict(r, fingerprint_version=99) if r["record"] == "page" else r for r in records]
    other = tmp_path / "v99.jsonl"
    write_export(other, events, moved)
    result = import_(a, other)
    assert result.exit_code == 0, result.output
    assert "(0 by fingerprint" in result.output
    with Case.open(a) as case:
        found = partners.agreement(case).summary["Paper B"]
    assert found["disagree"] == 1 and found["both_verified"] == 1


def test_the_stored_partner_verdicts_are_apart_from_our_state(newsrooms, tmp_path) -> None:
    a = fresh_a(newsrooms, tmp_path)
    db = sqlite3.connect(a / DATABASE_NAME)
    ours = db.execute("SELECT * FROM page_review ORDER BY page_row").fetchall()
    db.close()
    assert import_(a, newsrooms["log"]).exit_code == 0
    db = sqlite3.connect(a / DATABASE_NAME)
    assert db.execute("SELECT * FROM page_review ORDER BY page_row").fetchall() == ours
    kinds = [r[0] for r in db.execute("SELECT kind FROM review_events ORDER BY seq")]
    payload = json.loads(
        db.execute("SELECT payload FROM review_events ORDER BY seq DESC LIMIT 1").fetchone()[0]
    )
    db.close()
    assert kinds[-1] == "import" and kinds.count("import") == 1
    assert payload["partner"] == "Paper B" and payload["events"] == 6
    assert payload["head"] == read_export(newsrooms["log"])[0][-1]["hash"]


def test_search_show_report_and_app_show_the_partner(newsrooms, tmp_path: Path) -> None:
    a = fresh_a(newsrooms, tmp_path)
    shared = newsrooms["shared"]
    assert run(a, "index").exit_code == 0  # before the import: its pages must be re-indexed
    assert import_(a, newsrooms["log"]).exit_code == 0

    def ids(query: str) -> list[str]:
        result = run(a, "search", query, "--json", "--limit", "100")
        assert result.exit_code == 0, result.output
        return sorted(json.loads(line)["page_id"] for line in result.stdout.splitlines())

    assert ids("disagree:true") == [shared[1]]
    assert ids("partner:paper_b:disputed") == sorted([shared[1], shared[2]])
    assert ids('partner:"Paper B":verified') == sorted([shared[0], shared[4]])
    assert shared[3] in ids("partner:paper_b:unreviewed")
    assert newsrooms["only_a"][0] not in ids("partner:paper_b")
    assert run(a, "search", "partner:paper_b:maybe").exit_code == 2

    detail = json.loads(run(a, "show", shared[1], "--json").stdout)
    theirs = detail["partners"]["Paper B"]
    assert theirs["status"] == "disputed" and theirs["page_id"] == newsrooms["twin"][shared[1]]

    report = tmp_path / "report.html"
    assert run(a, "export", "--format", "report", "-o", str(report)).exit_code == 0
    html = report.read_text(encoding="utf-8")
    section = html[html.index("Agreement with partner newsrooms") :]
    assert shared[1] in section and shared[2] in section and "disagree" in section
    assert shared[0] not in section.split("disputed pages and disagreements")[1]

    from workbench.tui.app import make_app, page_heading

    heading = page_heading(detail).plain
    assert "Paper B: disputed by bob" in heading and "DISAGREE" in heading

    assert run(a, "config", "reviewer", "alice").exit_code == 0  # else the app asks first

    async def scenario() -> None:
        app = make_app(str(a))
        async with app.run_test(size=(140, 45)) as pilot:
            await pilot.pause()
            await pilot.press("7")
            await app.workers.wait_for_complete()
            await pilot.pause()
            notes = [n.message for n in app._notifications]
            assert [row["page_id"] for row in app.rows] == [shared[1]], notes

    import asyncio

    asyncio.run(scenario())

    # once we agree, the page leaves the disagreements
    assert run(a, "mark", shared[1], "--status", "disputed", reviewer="alice").exit_code == 0
    assert ids("disagree:true") == []


def test_our_log_verify_catches_a_partner_verdict_changed_after_the_import(
    newsrooms, tmp_path: Path
) -> None:
    a = fresh_a(newsrooms, tmp_path)
    assert import_(a, newsrooms["log"]).exit_code == 0
    db = sqlite3.connect(a / DATABASE_NAME, isolation_level=None)
    assert db.execute("SELECT count(*) FROM partner_events").fetchone()[0] == 6
    twin = newsrooms["twin"][newsrooms["shared"][1]]
    db.execute("UPDATE partner_reviews SET status = 'verified' WHERE page_id = ?", (twin,))
    db.close()
    result = run(a, "log", "verify")
    assert result.exit_code == 6
    assert f"Paper B's verdict on their {twin}" in result.output

    b = tmp_path / "b"
    shutil.copytree(newsrooms["a"], b)
    assert import_(b, newsrooms["log"]).exit_code == 0
    db = sqlite3.connect(b / DATABASE_NAME, isolation_level=None)
    with pytest.raises(sqlite3.DatabaseError):
        db.execute("DELETE FROM partner_events")
    db.execute("DROP TRIGGER partner_events_no_delete")
    db.execute("DELETE FROM partner_events WHERE seq = 6")
    db.close()
    result = run(b, "log", "verify")
    assert result.exit_code == 6
    assert "Paper B's imported log" in result.output
