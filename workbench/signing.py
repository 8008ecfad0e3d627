"""Signed checkpoints in the review log, through OpenSSH's ``ssh-keygen -Y``.

Why: a hash chain proves that nobody rewrote the log only to someone who wrote its head
down. A checkpoint is an event of the chain (kind ``checkpoint``) that carries the head
and the number of events before it, the time and the reviewer, signed with an SSH key in
the namespace ``workbench-log`` (the mechanism git uses for SSH-signed commits). Anyone
with the log and the signer's public key (an allowed-signers file, as for git) can then
check that the log up to the checkpoint is the one the signer saw.

What is signed is :func:`checkpoint_message`: one line of canonical JSON. The signature
(armored, ``-----BEGIN SSH SIGNATURE-----``) and the signing key's fingerprint are in the
checkpoint event's payload, so the chain covers them too.

A log cut short after a checkpoint leaves a valid, shorter chain. Two second records catch
it: the case keeps every checkpoint's seq and hash in ``log_checkpoints`` (outside
``review_events``), and a JSONL export repeats each checkpoint in a ``"record":
"checkpoint"`` line after the events; a checkpoint named there but missing from the chain
fails verification.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import review
from workbench.errors import UsageError
from workbench.store import Case, utc_now

NAMESPACE = "workbench-log"
CHECKPOINT_KIND = "checkpoint"
SIGN_EVERY_DEFAULT = "25"
_GOOD_RE = re.compile(r'Good "[^"]*" signature(?: for (?P<principal>.+?))? with (?P<key>.+)$')
_SIGN_EVERY_RE = re.compile(r"^\s*(\d+)\s*(m|min|minutes?)?\s*$")
_TIMEOUT = 30


def _ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if not found:
        raise UsageError(
            "ssh-keygen (OpenSSH) is not installed: run 'make setup' or "
            "'sudo apt-get install openssh-client'"
        )
    return found


def checkpoint_message(head: str, events: int, at: str, reviewer: str) -> bytes:
    """The exact bytes a checkpoint's signature covers."""
    body = {
        "namespace": NAMESPACE,
        "head": head,
        "events": events,
        "at": at,
        "reviewer": reviewer,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def sign_message(key: str | os.PathLike[str], message: bytes) -> str:
    """An armored SSH signature of ``message`` with the private key file ``key``."""
    key_path = Path(key).expanduser()
    if not key_path.is_file():
        raise UsageError(
            f"{key_path}: no such key file (give the private key, e.g. ~/.ssh/id_ed25519)"
        )
    result = subprocess.run(
        [_ssh_keygen(), "-q", "-Y", "sign", "-f", str(key_path), "-n", NAMESPACE],
        input=message,
        capture_output=True,
        timeout=_TIMEOUT,
        check=False,
    )
    signature = result.stdout.decode("ascii", "replace")
    if result.returncode != 0 or "BEGIN SSH SIGNATURE" not in signature:
        detail = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(
            f"{key_path}: ssh-keygen could not sign with this key"
            f" ({detail[-1] if detail else 'exit ' + str(result.returncode)})"
        )
    return signature


@dataclass
class SignatureCheck:
    """What checking one signature found; ``signer`` is a principal or a key fingerprint."""

    ok: bool
    key: str = ""
    principal: str | None = None
    problem: str = ""

    @property
    def signer(self) -> str:
        if self.principal:
            return f"{self.principal} ({self.key})"
        return f"{self.key} (signer unverified: no allowed-signers file given)"


def check_signature(
    message: bytes, signature: str, allowed_signers: str | os.PathLike[str] | None = None
) -> SignatureCheck:
    """Check a signature: against an allowed-signers file (names the signer), or with
    ``-Y check-novalidate`` when none is given (the signature matches the message and the
    key in it, but nobody vouched for that key)."""
    tool = _ssh_keygen()
    with tempfile.TemporaryDirectory(prefix="workbench-sig-") as folder:
        sig_path = Path(folder) / "checkpoint.sig"
        sig_path.write_text(signature, encoding="ascii", errors="replace")
        if allowed_signers is None:
            result = _run(
                [tool, "-Y", "check-novalidate", "-n", NAMESPACE, "-s", str(sig_path)], message
            )
            return _parse(result, "the signature does not match the checkpoint")
        allowed = Path(allowed_signers)
        if not allowed.is_file():
            raise UsageError(f"{allowed}: no such allowed-signers file")
        found = _run([tool, "-Y", "find-principals", "-s", str(sig_path), "-f", str(allowed)], None)
        principals = found.stdout.decode("utf-8", "replace").split()
        if found.returncode != 0 or not principals:
            key = _run(
                [tool, "-Y", "check-novalidate", "-n", NAMESPACE, "-s", str(sig_path)], message
            )
            parsed = _parse(key, "")
            return SignatureCheck(
                ok=False,
                key=parsed.key,
                problem=f"signed by a key not in {allowed}"
                f" ({parsed.key or 'the signature cannot be read'})",
            )
        last = SignatureCheck(ok=False, problem="the signature does not match the checkpoint")
        for principal in principals:
            result = _run(
                [
                    tool,
                    "-Y",
                    "verify",
                    "-f",
                    str(allowed),
                    "-I",
                    principal,
                    "-n",
                    NAMESPACE,
                    "-s",
                    str(sig_path),
                ],
                message,
            )
            last = _parse(result, f"the signature by {principal} does not match the checkpoint")
            if last.ok:
                return last
        return last


def _run(command: list[str], message: bytes | None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        command,
        input=message if message is not None else b"",
        capture_output=True,
        timeout=_TIMEOUT,
        check=False,
    )


def _parse(result: subprocess.CompletedProcess[bytes], problem: str) -> SignatureCheck:
    text = (result.stdout + b"\n" + result.stderr).decode("utf-8", "replace")
    for line in text.splitlines():
        match = _GOOD_RE.search(line.strip())
        if match and result.returncode == 0:
            return SignatureCheck(ok=True, key=match["key"].strip(), principal=match["principal"])
    return SignatureCheck(ok=False, problem=problem)


# ----- checkpoints in the chain --------------------------------------------------------


def sign_checkpoint(case: Case, key: str | os.PathLike[str], reviewer: str) -> dict[str, Any]:
    """Append a signed checkpoint event covering every event before it.

    The signature is made outside the write transaction (ssh-keygen may ask for the key's
    passphrase: other reviewers must not wait on it); if an event was appended meanwhile,
    the checkpoint is signed again over the new head.
    """
    key_path = str(Path(key).expanduser().resolve())
    for _ in range(5):
        events, head = _last(case)
        at = utc_now()
        message = checkpoint_message(head, events, at, reviewer)
        signature = sign_message(key_path, message)
        check = check_signature(message, signature)
        if not check.ok:
            raise UsageError(
                f"{key_path}: the signature just made does not check ({check.problem})"
            )
        with case.transaction() as db:
            if _last(case) != (events, head):
                continue  # another reviewer marked a page meanwhile: sign the new head
            event = review.append_event(
                db,
                kind=CHECKPOINT_KIND,
                reviewer=reviewer,
                at=at,
                payload={"head": head, "events": events, "key": check.key, "signature": signature},
            )
            db.execute(
                "INSERT INTO log_checkpoints(seq, hash) VALUES (?, ?)",
                (event["seq"], event["hash"]),
            )
            return event
    raise UsageError("the review log kept changing while signing; run 'workbench log sign' again")


def _last(case: Case) -> tuple[int, str]:
    last = case.db.execute(
        "SELECT seq, hash FROM review_events ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return (last[0], last[1]) if last else (0, review.GENESIS_HASH)


@dataclass
class CheckpointReport:
    """Each signed checkpoint (seq, signer) and every problem found with them."""

    signed: list[tuple[int, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unsigned_tail: int = 0  # events after the last checkpoint (no signature covers them)


def verify_checkpoints(
    events: Iterable[dict[str, Any]],
    allowed_signers: str | os.PathLike[str] | None = None,
    expected: Iterable[tuple[int, str]] = (),
) -> CheckpointReport:
    """Check every checkpoint event of a chain (verified first by ``review.verify_chain``)
    and that every checkpoint in ``expected`` (seq, hash: the second record) is there."""
    report = CheckpointReport()
    by_seq: dict[int, str] = {}
    prev_hash = review.GENESIS_HASH
    count = 0
    for event in events:
        count += 1
        by_seq[event["seq"]] = event["hash"]
        if event.get("kind") == CHECKPOINT_KIND:
            report.unsigned_tail = 0
            _check_one(event, prev_hash, allowed_signers, report)
        else:
            report.unsigned_tail += 1
        prev_hash = event["hash"]
    for seq, digest in sorted(expected):
        if seq not in by_seq:
            report.problems.append(
                f"signed checkpoint #{seq} is missing: the log was cut short after it"
                f" (it has {count} event(s))"
            )
        elif by_seq[seq] != digest:
            report.problems.append(
                f"signed checkpoint #{seq} recorded with hash {digest}, but event #{seq}"
                f" is now {by_seq[seq]} (the log was rewritten)"
            )
    return report


def _check_one(
    event: dict[str, Any],
    prev_hash: str,
    allowed_signers: str | os.PathLike[str] | None,
    report: CheckpointReport,
) -> None:
    seq = event["seq"]
    payload = event.get("payload") or {}
    if payload.get("head") != prev_hash or payload.get("events") != seq - 1:
        report.problems.append(
            f"checkpoint #{seq}: it names head {payload.get('head')} after"
            f" {payload.get('events')} event(s), not the chain before it"
        )
        return
    signature = payload.get("signature")
    if not isinstance(signature, str) or "BEGIN SSH SIGNATURE" not in signature:
        report.problems.append(f"checkpoint #{seq}: it carries no signature")
        return
    message = checkpoint_message(prev_hash, seq - 1, event["at"], event["reviewer"])
    check = check_signature(message, signature, allowed_signers)
    if not check.ok:
        report.problems.append(f"checkpoint #{seq}: {check.problem}")
        return
    if payload.get("key") and payload["key"] != check.key:
        report.problems.append(
            f"checkpoint #{seq}: it names key {payload['key']} but was signed by {check.key}"
        )
        return
    report.signed.append((seq, check.signer))


def recorded_checkpoints(case: Case) -> list[tuple[int, str]]:
    """The case's second record of its signed checkpoints (seq, hash)."""
    return [
        (row[0], row[1])
        for row in case.db.execute("SELECT seq, hash FROM log_checkpoints ORDER BY seq")
    ]


# ----- signing automatically -----------------------------------------------------------


def parse_sign_every(text: str) -> tuple[int, str]:
    """``25`` (events) or ``10m`` (minutes) -> (number, 'events' | 'minutes')."""
    match = _SIGN_EVERY_RE.match(text or "")
    if not match or int(match.group(1)) < 1:
        raise UsageError(f"sign-every {text!r}: give a number of events (25) or of minutes (10m)")
    return int(match.group(1)), "minutes" if match.group(2) else "events"


def auto_checkpoint(case: Case, reviewer: str) -> dict[str, Any] | None:
    """Sign a checkpoint when ``config signing-key`` is set and ``config sign-every``
    events or minutes have passed since the last one (with events since); else None."""
    key = case.get_setting("signing-key")
    if not key:
        return None
    number, unit = parse_sign_every(case.get_setting("sign-every") or SIGN_EVERY_DEFAULT)
    last = case.db.execute(
        "SELECT seq, at FROM review_events WHERE kind = ? ORDER BY seq DESC LIMIT 1",
        (CHECKPOINT_KIND,),
    ).fetchone()
    since_seq, since_at = (last[0], last[1]) if last else (0, None)
    newer = case.db.execute(
        "SELECT count(*), min(at) FROM review_events WHERE seq > ?", (since_seq,)
    ).fetchone()
    if not newer[0]:
        return None
    if unit == "events":
        due = newer[0] >= number
    else:
        start = _parse_time(since_at or newer[1])
        now = _clock()
        due = (now - start).total_seconds() >= number * 60
    return sign_checkpoint(case, key, reviewer) if due else None


def _clock() -> datetime.datetime:
    """Now, in UTC (a seam for tests: minutes cannot be waited for in a test)."""
    return datetime.datetime.now(datetime.UTC)


def _parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
