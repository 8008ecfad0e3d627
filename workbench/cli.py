"""The command line: parses arguments, calls the core, prints. Nothing else lives here.

Exit status: 0 success; 1 unexpected internal error; 2 bad usage or unusable case
(read-only, damaged); 3 ingest finished but some files failed or some pages could not
be OCR'd (each named on stderr); 4 OCR engine problem (Tesseract or a language pack
missing); 7 the disk is full; 8 the Dask cluster given with --cluster cannot be used;
130 interrupted (Ctrl-C): run the same command again to resume.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from typing import Any

import click

# Every command imports this module, `--help` included: what is imported here must be
# light. PyMuPDF, Pillow (the readers, the pipeline) and Whoosh (the index) are imported
# inside the commands that use them; tests/test_startup.py keeps it so.
from workbench import __version__, review, views
from workbench.errors import UsageError, WorkbenchError, from_os_error
from workbench.reports import IngestObserver, IngestReport
from workbench.store import Case, translate_error

EXIT_SOME_FILES_FAILED = 3
EXIT_INTERRUPTED = 130
EXIT_VERIFY_FAILED = 6


class _State:
    def __init__(self, case_dir: str) -> None:
        self.case_dir = case_dir

    def open_case(
        self, *, create: bool = False, prefix: str | None = None, write: bool = False
    ) -> Case:
        """``write``: the command changes the case; refused up front (one line, exit 2)
        when the case is on a read-only drive, before any work is done."""
        return Case.open(self.case_dir, create=create, prefix=prefix, writable=write)


class WorkbenchGroup(click.Group):
    """Turns every WorkbenchError into one clean line and its exit status; no tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WorkbenchError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo(
                "\ninterrupted: work already committed is kept; "
                "run the same command again to resume",
                err=True,
            )
            sys.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:  # `workbench pages | head`: the reader left, stop quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)
        except (sqlite3.Error, OSError) as error:
            # a full or read-only drive, or a damaged database, met outside the store's
            # own boundary (a plain read): the same typed error and line
            state = ctx.obj if isinstance(ctx.obj, _State) else None
            translated = translate_error(error, state.case_dir) if state else None
            if translated is None:
                return self._internal_error(error)
            click.echo(f"error: {translated}", err=True)
            sys.exit(translated.exit_code)
        except click.exceptions.Abort:
            click.echo("aborted: nothing was changed", err=True)
            sys.exit(1)
        except (click.exceptions.ClickException, click.exceptions.Exit):
            raise
        except Exception as error:  # last resort: one line, never a traceback
            self._internal_error(error)

    @staticmethod
    def _internal_error(error: Exception) -> None:
        if os.environ.get("WORKBENCH_DEBUG"):
            raise error
        click.echo(
            f"error: unexpected internal error ({type(error).__name__}: {error}); "
            "set WORKBENCH_DEBUG=1 to see the traceback and please report it",
            err=True,
        )
        sys.exit(1)


@click.group(cls=WorkbenchGroup, invoke_without_command=True)
@click.option(
    "--case",
    "case_dir",
    envvar="WORKBENCH_CASE",
    default="./case",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Case folder (also WORKBENCH_CASE).",
)
@click.version_option(__version__, prog_name="workbench")
@click.pass_context
def main(ctx: click.Context, case_dir: str) -> None:
    """Verify a leaked document trove page by page, offline."""
    ctx.obj = _State(case_dir)
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            ctx.invoke(open_app)
        else:
            click.echo(ctx.get_help())


@main.command(name="open")
@click.option(
    "--graphics",
    type=click.Choice(["auto", "kitty", "sixel", "halfblock"]),
    default=None,
    help="How to draw page images: Kitty graphics, Sixel, or half blocks (works everywhere, "
    "tmux included). Default: WORKBENCH_GRAPHICS, else ask the terminal (half blocks in tmux).",
)
@click.pass_obj
def open_app(state: _State, graphics: str | None = None) -> None:
    """Open the case in the reviewer's terminal app (also: workbench with no command)."""
    from workbench.tui.app import run_app

    state.open_case().close()  # a clear error line if there is no case here
    run_app(state.case_dir, graphics_mode=graphics)


@main.command()
@click.option("--prefix", default=None, help="Page id prefix, Bates style (default WB).")
@click.pass_obj
def init(state: _State, prefix: str | None) -> None:
    """Create an empty case."""
    with state.open_case(create=True, prefix=prefix, write=True) as case:
        click.echo(f"case {case.root} ready; pages will be numbered {case.prefix}-000001, ...")


@main.command(name="ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--lang",
    default=None,
    help="Tesseract languages for OCR, e.g. eng, fas+eng, ara (default: the case's, "
    "first eng). The case remembers the last one given.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="OCR worker processes (default: number of cores).",
)
@click.option(
    "--password",
    "passwords",
    multiple=True,
    help="Password to try on encrypted PDFs; may be given several times.",
)
@click.option("--prefix", default=None, help="Page id prefix when this creates the case.")
@click.option("--quiet", is_flag=True, help="No progress bar and no summary.")
@click.option(
    "--cluster",
    "cluster",
    default=None,
    metavar="tcp://HOST:8786",
    help="Send the page work to the workers of this Dask scheduler instead of local "
    "processes (also WORKBENCH_CLUSTER); needs the cluster extra.",
)
@click.option(
    "--no-check",
    is_flag=True,
    help="Do not run the checks (findings) after the ingest; 'workbench check' runs them.",
)
@click.pass_obj
def ingest_command(
    state: _State,
    paths: tuple[str, ...],
    lang: str | None,
    jobs: int | None,
    passwords: tuple[str, ...],
    prefix: str | None,
    quiet: bool,
    no_check: bool,
    cluster: str | None = None,
) -> None:
    """Add PDFs, images and folders (recursively) to the case.

    Files are recognised by content. A file already in the case is skipped; the same
    content under another path is recorded as a duplicate. Interrupted runs resume
    where they stopped when run again. Each file that cannot be ingested gets one
    line 'error: PATH: reason' on stderr, and so does each page OCR failed on (kept
    without text; the same command run again reads it again); the exit status is then
    3. Damaged data and the libraries' warnings get 'warning: PATH: ...' lines.
    """
    from workbench.pipeline import ingest  # the readers, the workers: only ingest needs them

    address = _cluster_address(cluster)
    with state.open_case(create=True, prefix=prefix, write=True) as case:
        _check_index(case)
        progress = _Progress(enabled=not quiet and sys.stderr.isatty())
        report = ingest(
            case,
            list(paths),
            lang=lang,
            jobs=jobs,
            passwords=passwords,
            observer=progress,
            cluster=address,
        )
        # the checks look at what changed: an ingest that added or re-read no page
        # (everything already in the case) leaves them nothing new to look at
        changed = report.pages_added or report.pages_reread
        checked = None if no_check or not changed else _run_checks_after_ingest(case)
    if not quiet:
        click.echo(_summary(report))
        if checked:
            click.echo(checked)
    if report.index_problem:
        click.echo(f"warning: search index: {report.index_problem}", err=True)
    if report.failures or report.page_errors:
        sys.exit(EXIT_SOME_FILES_FAILED)


def _cluster_address(given: str | None) -> str | None:
    """--cluster, else WORKBENCH_CLUSTER (checked without importing Dask)."""
    address = (given or os.environ.get("WORKBENCH_CLUSTER", "")).strip()
    if not address:
        return None
    from workbench import cluster

    return cluster.cluster_address(address)


@main.group(name="cluster")
def cluster_group() -> None:
    """A Dask cluster for the page work of an ingest (ingest --cluster)."""


@cluster_group.command(name="check")
@click.option(
    "--cluster",
    "cluster",
    default=None,
    metavar="tcp://HOST:8786",
    help="The Dask scheduler (also WORKBENCH_CLUSTER).",
)
@click.option(
    "--lang",
    default=None,
    help="Also check that every worker has these Tesseract languages (e.g. fas+eng).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def cluster_check(cluster: str | None, lang: str | None, as_json: bool) -> None:
    """Each worker's workbench and Tesseract versions, languages and cores.

    Versions that differ between workers (page text would depend on the worker that
    read the page) and missing language packs are errors: exit status 8.
    """
    from workbench import cluster as dask_cluster
    from workbench.errors import ClusterError

    address = _cluster_address(cluster)
    if address is None:
        raise UsageError("give the scheduler with --cluster tcp://HOST:8786 or WORKBENCH_CLUSTER")
    report = dask_cluster.check_cluster(address, lang)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "cluster": report.address,
                    "workers": report.workers,
                    "problems": report.problems,
                    "notes": report.notes,
                    "ok": report.ok,
                },
                ensure_ascii=False,
            )
        )
    else:
        click.echo(f"cluster {report.address}: {len(report.workers)} worker(s)")
        for name, info in report.workers.items():
            languages = ", ".join(x for x in info.get("languages", []) if x != "osd") or "none"
            click.echo(
                f"  {name} ({info.get('host')}): workbench {info.get('workbench')}, "
                f"Tesseract {info.get('tesseract') or 'missing'}, PyMuPDF {info.get('pymupdf')}, "
                f"Pillow {info.get('pillow')}; languages {languages}; "
                f"{info.get('cores')} cores, {info.get('nthreads')} thread(s)"
            )
        for note in report.notes:
            click.echo(f"note: {note}", err=True)
    if not report.ok:
        raise ClusterError("; ".join(report.problems))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_obj
def status(state: _State, as_json: bool) -> None:
    """Counts of sources, pages, text sources and failures."""
    with state.open_case() as case:
        counts = case.counts()
    if as_json:
        _print_json(counts)
        return
    by_text = counts["pages_by_text_source"]
    click.echo(f"case        {counts['case']} (page ids {counts['prefix']}-…)")
    click.echo(f"languages   {counts['languages']}")
    click.echo(
        f"sources     {counts['sources']}: {counts['sources_ingested']} ingested, "
        f"{counts['sources_duplicate']} duplicate, {counts['sources_failed']} failed"
    )
    click.echo(
        f"pages       {counts['pages']}: {by_text['layer']} text layer, {by_text['ocr']} OCR, "
        f"{by_text['none']} no text"
    )
    if counts["pages_with_errors"]:
        click.echo(f"page errors {counts['pages_with_errors']} (see 'workbench pages')")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def sources(state: _State, as_json: bool) -> None:
    """Every file recorded in the case, with its hash and status."""
    with state.open_case() as case:
        rows = views.source_records(case)
    if as_json:
        for row in rows:
            _print_json(row)
        return
    for row in rows:
        pages = "" if row["pages"] is None else f"{row['pages']:>4}p"
        detail = f"  {row['error']}" if row["error"] else ""
        sha = (row["sha256"] or "-" * 12)[:12]
        click.echo(f"{row['status']:<9} {pages:>5} {sha}  {row['path']}{detail}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def pages(state: _State, as_json: bool) -> None:
    """Every page of the case in page-id order."""
    with state.open_case() as case:
        for row in views.page_records(case):
            if as_json:
                _print_json(row)
            else:
                conf = "" if row["ocr_confidence"] is None else f"{row['ocr_confidence']:5.1f}"
                click.echo(
                    f"{row['page_id']}  {row['text_source']:<5} {conf:>5} "
                    f"{row['char_count']:>6}c  p{row['page_number']:<4} {row['source_path']}"
                )


@main.command()
@click.argument("page_id")
@click.option(
    "--hidden",
    is_flag=True,
    help="Also print the text still under redaction boxes (masked with █ otherwise).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_obj
def show(state: _State, page_id: str, hidden: bool, as_json: bool) -> None:
    """One page: provenance, text, metadata, page marker and dates found.

    Text still under black redaction boxes (see the bad-redaction check) is masked with
    █ unless --hidden is given; then it is printed apart, labelled as hidden text.
    """
    with state.open_case() as case:
        record = views.page_detail(case, page_id)
        look = hidden or views.needs_redaction_look(case, record)
    if look:
        views.redaction_view(record, reveal=hidden)
    if as_json:
        _print_json(record)
        return
    for line in _describe_page(record):
        click.echo(line)


SEARCH_HELP = """Search the page text of the case; best matches first.

\b
Query language (Whoosh's), with examples:
  Soleimani                      a word (case, accents and Persian/Arabic letter
                                 forms, digits and ZWNJ are folded: ي=ی, ك=ک, ۱۳۹۳=1393)
  "oil minister"                 an exact phrase
  "oil minister"~5               the words within 5 positions of each other
  oil AND (minister OR ministry) boolean; a space means AND
  sanctions NOT iraq             exclude pages
  recruit*                       wildcard (also ? for one character)
  Soleimani~                     fuzzy: one edit away (Soleimani~2: two)
  status:verified                review status (unreviewed, verified, disputed, illegible)
  source:cables_2014*            the file name (lower case, wildcards allowed)
  page:3                         page number within its file
  lang:fas                       page language (fas, ara, eng, und)
  from:ocr                       where the text came from (layer, ocr, none)
  date:[2014-01-01 TO 2014-06-30]
                                 pages whose text gives a date in that range; Jalali
                                 and Hijri dates count by their Gregorian day
  date:2014-08                   a whole month (or date:2014, a year)
  id:WB-000042                   one page
  finding:any                    an open finding (or finding:CHECK)
  partner:paper_b:disputed       an imported partner's verdict (partner:"Paper B":verified)
  disagree:true                  a partner's status differs from ours

Exit status: 0 results printed (even none); 2 the query cannot be parsed.
"""


@main.command(help=SEARCH_HELP)
@click.argument("query")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many hits.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per hit.")
@click.pass_obj
def search(state: _State, query: str, limit: int, offset: int, as_json: bool) -> None:
    from workbench import index  # Whoosh: imported by the commands that use the index

    with state.open_case() as case:
        _check_index(case)
        pending = index.pending(case)
        if pending and case.read_only:
            click.echo(
                f"warning: {case.root}: the case is read-only, so its search index cannot "
                f"take the last {pending} page change(s); results may not show them",
                err=True,
            )
        elif pending:
            try:
                index.sync(case, timeout=2)
            except index.IndexBusyError:
                click.echo("warning: the index is being updated; results may lag", err=True)
        try:
            results = index.search(case, query, limit=limit, offset=offset)
        except index.IndexDamagedError as error:
            if case.read_only:
                raise
            # damage deep inside a segment shows only when a search reads it
            count = index.rebuild(case)
            click.echo(
                f"warning: {index.index_dir(case)}: the search index was damaged "
                f"({error.detail}); rebuilt from the case ({count} pages)",
                err=True,
            )
            results = index.search(case, query, limit=limit, offset=offset)
    if as_json:
        for hit in results.hits:
            _print_json(hit.as_json())
        return
    tty = sys.stdout.isatty()
    shown = f"{offset + 1}-{offset + len(results.hits)}" if results.hits else "0"
    click.echo(f"{results.total} page(s) match; showing {shown}")
    for hit in results.hits:
        record = hit.record
        click.echo(
            f"{record['page_id']}  {record['status']:<10} p{record['page_number']:<4} "
            f"{record['source_path']}"
        )
        click.echo("    " + _highlight(hit.snippet, hit.snippet_matches, tty))


@main.command(name="index")
@click.option("--rebuild", is_flag=True, help="Rebuild the whole index from the case database.")
@click.pass_obj
def index_command(state: _State, rebuild: bool) -> None:
    """Bring the search index up to date (it normally follows ingest by itself)."""
    from workbench import index  # Whoosh: imported by the commands that use the index

    with state.open_case(write=True) as case:
        if rebuild:
            count = index.rebuild(case)
            click.echo(f"index rebuilt: {count} page(s)")
        else:
            _check_index(case)
            count = index.sync(case)
            click.echo(f"index up to date ({count} page(s) added or updated)")


REVIEWER_OPTION = click.option(
    "--reviewer", default=None, help="Who decides (else WORKBENCH_REVIEWER or the case's)."
)


@main.command()
@click.argument("page_ids", nargs=-1)
@click.option(
    "--status",
    required=True,
    type=click.Choice(review.STATUSES),
    help="The new status of the pages.",
)
@click.option("--note", default=None, help="Why: kept with each page's event.")
@click.option("--query", "query", default=None, help="Mark every page this search matches.")
@click.option("--yes", is_flag=True, help="Do not ask to confirm a --query mark.")
@REVIEWER_OPTION
@click.pass_obj
def mark(
    state: _State,
    page_ids: tuple[str, ...],
    status: str,
    note: str | None,
    query: str | None,
    yes: bool,
    reviewer: str | None,
) -> None:
    """Set the review status of pages: ids (WB-000042) and ranges (WB-000010..WB-000014).

    Each change is an event in the hash-chained review log, with the reviewer, the UTC
    time, the note and the page's SHA-256 at that moment.
    """
    with state.open_case(write=True) as case:
        who = review.resolve_reviewer(case, reviewer)
        targets = review.expand_page_ids(case, page_ids) if page_ids else []
        if query:
            from workbench import index  # the query parser: only --query needs it

            _sync_quietly(case)
            # the case as it is, not only the index: pages it has not caught up with count
            matched = index.current_matching_page_ids(case, query)
            click.echo(f"{len(matched)} page(s) match {query!r}", err=True)
            if matched and not yes:
                click.confirm(f"mark them {status}?", abort=True, err=True)
            if not targets and not matched:
                raise UsageError(f"no pages match {query!r}: nothing to mark")
            done = review.mark_query(case, targets, query, matched, status, who, note)
            events = done.events
            for left, why in (
                (done.no_longer_matching, "no longer match (changed meanwhile), not marked"),
                (done.not_confirmed, "match only now, not marked: run the command again"),
            ):
                if left:
                    shown = ", ".join(left[:5]) + (" ..." if len(left) > 5 else "")
                    click.echo(f"warning: {len(left)} page(s) {why}: {shown}", err=True)
        elif not targets:
            raise UsageError("no pages given: name page ids or ranges, or use --query")
        else:
            events = review.mark(case, targets, status, who, note)
        if query:
            _sync_quietly(case)
        # else the pages stay queued for the index (as after any change) and the next
        # search brings it up to date: a script marking page by page does not wait for
        # Whoosh to load and commit on every call
        click.echo(f"{len(events)} page(s) marked {status} by {who}")
        if events:
            _auto_sign(case, who)


@main.command()
@click.argument("page_id")
@click.argument("text")
@REVIEWER_OPTION
@click.pass_obj
def note(state: _State, page_id: str, text: str, reviewer: str | None) -> None:
    """Add a note to a page without changing its status."""
    with state.open_case(write=True) as case:
        who = review.resolve_reviewer(case, reviewer)
        [target] = review.expand_page_ids(case, [page_id])
        review.add_note(case, target, text, who)
        _sync_quietly(case)
    click.echo(f"note added to {target} by {who}")


CONFIG_KEYS = ("reviewer", "signing-key", "sign-every")


@main.command()
@click.argument("key", type=click.Choice(CONFIG_KEYS))
@click.argument("value", required=False)
@click.pass_obj
def config(state: _State, key: str, value: str | None) -> None:
    """Show or set a case setting.

    \b
    reviewer     the default reviewer name
    signing-key  an SSH private key: 'mark' then signs a checkpoint every sign-every
                 events or minutes ('none' turns it off)
    sign-every   25 (events, the default) or 10m (minutes)
    """
    from workbench import signing

    with state.open_case(write=value is not None) as case:
        if value is None:
            shown = case.get_setting(key)
            if key == "sign-every" and not shown:
                shown = signing.SIGN_EVERY_DEFAULT
            click.echo(shown or "")
            return
        value = value.strip()
        if not value:
            raise UsageError(f"{key} cannot be empty")
        if key == "sign-every":
            signing.parse_sign_every(value)
        if key == "signing-key" and value.lower() != "none":
            path = os.path.abspath(os.path.expanduser(value))
            if not os.path.isfile(path):
                raise UsageError(f"{value}: no such key file (give the private key)")
            value = path
        with case.transaction() as db:
            if key == "signing-key" and value.lower() == "none":
                db.execute("DELETE FROM settings WHERE key = ?", (key,))
            else:
                case.set_setting(key, value)
    click.echo(f"{key} = {value}")


def _auto_sign(case: Case, who: str) -> None:
    """After a mark: the checkpoint 'config signing-key' asks for; the marks are kept
    whatever happens here."""
    from workbench import signing

    try:
        event = signing.auto_checkpoint(case, who)
    except WorkbenchError as error:
        click.echo(f"warning: no checkpoint signed ({error}); run 'workbench log sign'", err=True)
        return
    if event:
        click.echo(
            f"signed checkpoint #{event['seq']} over {event['payload']['events']} event(s)"
            f" with {event['payload']['key']}",
            err=True,
        )


@main.group()
def log() -> None:
    """The review log: sign it, verify its chain and signatures and the custody of the
    source files, import a partner newsroom's log."""


ALLOWED_SIGNERS_OPTION = click.option(
    "--allowed-signers",
    "allowed_signers",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="An OpenSSH allowed-signers file: signatures must be by a key in it, and the "
    "signer is named. Without it a signature is checked against the key it carries "
    "(signer unverified).",
)


@log.command(name="sign")
@click.option(
    "--key",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The SSH private key to sign with (e.g. ~/.ssh/id_ed25519).",
)
@REVIEWER_OPTION
@click.pass_obj
def log_sign(state: _State, key: str, reviewer: str | None) -> None:
    """Append a checkpoint (chain head, number of events, time, reviewer) signed with
    an SSH key (ssh-keygen -Y sign, namespace workbench-log)."""
    from workbench import signing

    with state.open_case(write=True) as case:
        who = review.resolve_reviewer(case, reviewer)
        event = signing.sign_checkpoint(case, key, who)
    payload = event["payload"]
    click.echo(
        f"checkpoint #{event['seq']} signed by {who} with {payload['key']}:"
        f" {payload['events']} event(s), head {payload['head']}"
    )
    click.echo(f"chain head  {event['hash']}")


@log.command(name="verify")
@click.option(
    "--file",
    "jsonl_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Verify an exported JSONL log on its own, with no case at hand.",
)
@click.option(
    "--head",
    default=None,
    help="With --file: the chain head written down earlier; catches events cut from the end.",
)
@ALLOWED_SIGNERS_OPTION
@click.pass_obj
def log_verify(
    state: _State, jsonl_file: str | None, head: str | None, allowed_signers: str | None
) -> None:
    """Recompute the chain, check every signed checkpoint, recompute the page states it
    gives, re-hash every source file; print the head.

    Exit status 0 when everything holds, 6 when a link is broken, a signature does not
    match (or is by a key not in --allowed-signers), the log was cut short after a signed
    checkpoint, a page's stored state differs from what the log gives, an imported
    partner's log or verdicts were changed since the import, or a file changed.
    """
    from workbench import partners, signing

    if jsonl_file:
        from workbench import export

        report = export.verify_jsonl(jsonl_file, expect_head=head, allowed_signers=allowed_signers)
        problems = list(report.problems)
    else:
        with state.open_case() as case:
            events = list(review.iter_events(case))
            report = review.verify_chain(events)
            problems = list(report.problems)
            if report.ok:
                checked = signing.verify_checkpoints(
                    events, allowed_signers, signing.recorded_checkpoints(case)
                )
                report.signed, report.unsigned_tail = checked.signed, checked.unsigned_tail
                problems += checked.problems
            problems += review.verify_derived_state(case)
            problems += partners.verify_partners(case)
            problems += review.verify_sources(case)
            missing = review.missing_sources(case)
        if missing:
            click.echo(f"note: {len(missing)} source file(s) are no longer on disk (not checked)")
    for problem in problems:
        click.echo(f"BROKEN: {problem}", err=True)
    click.echo(f"events      {report.events}")
    click.echo(f"chain head  {report.head}")
    for seq, signer in report.signed:
        click.echo(f"signed      checkpoint #{seq} by {signer}")
    if report.signed and report.unsigned_tail:
        click.echo(f"unsigned    {report.unsigned_tail} event(s) after the last checkpoint")
    if problems:
        sys.exit(EXIT_VERIFY_FAILED)
    click.echo(
        "log verified: the chain is intact"
        + (f", {len(report.signed)} signed checkpoint(s) good" if report.signed else "")
        + ("" if jsonl_file else ", every page's state follows from it and every file matches")
    )


@log.command(name="import")
@click.argument("jsonl_file", metavar="PARTNER.jsonl", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", required=True, help="The partner newsroom, e.g. 'Paper B'.")
@ALLOWED_SIGNERS_OPTION
@REVIEWER_OPTION
@click.pass_obj
def log_import(
    state: _State,
    jsonl_file: str,
    name: str,
    allowed_signers: str | None,
    reviewer: str | None,
) -> None:
    """Import a partner newsroom's exported log: verified first (exit 6 when it does not
    verify, or rewrote history an earlier import saw), pages matched to ours by content,
    their verdicts stored apart from our chain (which records one import event)."""
    from workbench import partners

    with state.open_case(write=True) as case:
        who = review.resolve_reviewer(case, reviewer)
        report = partners.import_log(case, jsonl_file, name, who, allowed_signers)
        _sync_quietly(case)
    for seq, signer in report.signed:
        click.echo(f"signed      checkpoint #{seq} by {signer}")
    if report.signed and report.unsigned_tail:
        click.echo(f"unsigned    {report.unsigned_tail} event(s) after their last checkpoint")
    if report.already:
        click.echo(f"{report.name}: already imported up to head {report.head}; nothing new")
        return
    matched = report.matched_by_fingerprint + report.matched_by_file
    click.echo(
        f"imported {report.name}: {report.events} event(s) ({report.new_events} new),"
        f" head {report.head}; {report.reviewed} of their {report.pages} page(s) reviewed;"
        f" {matched} matched to ours ({report.matched_by_fingerprint} by fingerprint,"
        f" {report.matched_by_file} by file and page number), {report.unmatched} not in"
        " this case"
    )


@main.command(name="agreement")
@click.option("--partner", default=None, help="Only this partner (default: every one imported).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per page.")
@click.pass_obj
def agreement_command(state: _State, partner: str | None, as_json: bool) -> None:
    """Our status and each partner's, page by page, and a summary: both verified, both
    disputed, we disagree, only one side reviewed, pages only one side has."""
    from workbench import partners

    with state.open_case() as case:
        found = partners.agreement(case, partner)
        if not found.summary:
            raise UsageError("no partner's log imported yet: run 'workbench log import' first")
    for page in found.pages:
        if as_json:
            _print_json(page)
        else:
            click.echo(_agreement_line(page))
    for name, counts in found.summary.items():
        said = ", ".join(
            f"{counts[key]} {partners.CATEGORY_LABELS[key]}"
            for key in partners.CATEGORIES
            if counts[key] or key in ("both_verified", "both_disputed", "disagree")
        )
        click.echo(f"{name}: {said}", err=as_json)


def _agreement_line(page: dict[str, Any]) -> str:
    from workbench import partners

    ours = page["ours"]
    parts = [f"{page['page_id'] or '-':<10}"]
    parts.append(
        "ours " + (f"{ours['status']:<10}" + f" {ours['reviewer'] or '':<12}" if ours else "-")
    )
    for name, verdict in page["theirs"].items():
        parts.append(
            f"{name}: {verdict['status']} {verdict['reviewer'] or ''} [{verdict['page_id']}]"
        )
    flags = [
        f"{name}: {partners.CATEGORY_LABELS[label]}"
        for name, label in page["agreement"].items()
        if label in ("disagree", "only_ours", "only_theirs")
    ]
    if flags:
        parts.append("  <- " + "; ".join(flags))
    return "  ".join(p.rstrip() for p in parts)


@main.group()
def doc() -> None:
    """Group pages into documents (a cable over several pages), or let workbench suggest."""


@doc.command(name="add")
@click.option("--pages", "pages", required=True, help="Ids and ranges: WB-000010..WB-000014.")
@click.option("--title", default=None, help="A title, e.g. the cable's serial.")
@click.option(
    "--date",
    "date",
    default=None,
    help="Gregorian 2014-08-03 or Jalali 1393/05/12 (or ۱۳۹۳/۰۵/۱۲).",
)
@click.option(
    "--claimed-pages",
    type=click.IntRange(min=1),
    default=None,
    help="How many pages the document says it has ('page X of Y').",
)
@REVIEWER_OPTION
@click.pass_obj
def doc_add(
    state: _State,
    pages: str,
    title: str | None,
    date: str | None,
    claimed_pages: int | None,
    reviewer: str | None,
) -> None:
    """Make the pages one document; recorded in the review log."""
    from workbench import documents

    with state.open_case(write=True) as case:
        who = review.resolve_reviewer(case, reviewer)
        page_ids = review.expand_page_ids(case, [pages])
        record = documents.add_document(
            case, page_ids, reviewer=who, title=title, date=date, claimed_pages=claimed_pages
        )
        _sync_quietly(case)
    click.echo(_describe_document(record))


@doc.command(name="suggest")
@click.option("--accept", is_flag=True, help="Record every suggestion as a document.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per suggestion.")
@REVIEWER_OPTION
@click.pass_obj
def doc_suggest(state: _State, accept: bool, as_json: bool, reviewer: str | None) -> None:
    """Propose document boundaries from 'page X of Y' markers, headers and files."""
    from workbench import documents

    with state.open_case(write=accept) as case:
        suggestions = documents.suggest_documents(case)
        if as_json:
            for suggestion in suggestions:
                _print_json(suggestion)
        else:
            for suggestion in suggestions:
                ids = suggestion["page_ids"]
                span = ids[0] if len(ids) == 1 else f"{ids[0]}..{ids[-1]}"
                claimed = suggestion["claimed_pages"]
                click.echo(
                    f"{span:<22} {len(ids):>3} page(s)"
                    + (f", claims {claimed}" if claimed else "")
                    + (f", {suggestion['date']}" if suggestion["date"] else "")
                    + (f", {suggestion['title']}" if suggestion["title"] else "")
                    + f"  ({suggestion['reason']})"
                )
        if accept and suggestions:
            who = review.resolve_reviewer(case, reviewer)
            created = documents.accept_suggestions(case, suggestions, reviewer=who)
            _sync_quietly(case)
            click.echo(f"{len(created)} document(s) recorded by {who}", err=as_json)
        elif not suggestions:
            click.echo("no suggestions: every page with a boundary clue is grouped", err=as_json)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per document.")
@click.pass_obj
def docs(state: _State, as_json: bool) -> None:
    """The documents of the case, with claimed and actual page counts."""
    from workbench import documents

    with state.open_case() as case:
        records = documents.document_records(case)
    for record in records:
        if as_json:
            _print_json(record)
        else:
            click.echo(_describe_document(record))


def _describe_document(record: dict[str, Any]) -> str:
    count = f"{record['actual_pages']} page(s)"
    if record["claimed_pages"]:
        count += f", claims {record['claimed_pages']}"
        if record["mismatch"]:
            count += " MISMATCH"
    date = ""
    if record["date_iso"]:
        date = f"  {record['date_iso']} ({record['date_jalali']})"
    span = f"{record['first_page']}..{record['last_page']}"
    return f"{record['id']}  {span}  {count}{date}  {record['title'] or ''}".rstrip()


@main.command(name="export")
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(["csv", "jsonl", "report", "manifest", "safe-pdf"]),
    help="csv: one row per page; jsonl: the full review log; report: readable HTML; "
    "manifest: an OPT-like page manifest; safe-pdf: pages rebuilt from pixels, safe to publish.",
)
@click.option(
    "-o", "--output", "output", required=True, type=click.Path(dir_okay=False), help="File."
)
@click.option("--pages", "pages", multiple=True, help="safe-pdf: ids and ranges (WB-10..14).")
@click.option("--query", "query", default=None, help="safe-pdf: the pages this search matches.")
@click.option("--document", "document", default=None, help="safe-pdf: one document's pages.")
@click.option(
    "--colour/--grey",
    "colour",
    default=False,
    help="safe-pdf: keep colour (printer tracking dots may survive); default greyscale.",
)
@click.option(
    "--text",
    "text",
    type=click.Choice(["ocr", "none"]),
    default="ocr",
    show_default=True,
    help="safe-pdf: a text layer from OCR of the new image, or images only.",
)
@click.option(
    "--dpi",
    type=click.IntRange(72, 600),
    default=300,
    show_default=True,
    help="safe-pdf: resolution of the new page images.",
)
@click.option(
    "--force", is_flag=True, help="safe-pdf: export pages with open bad-redaction/tracking-dots."
)
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="safe-pdf: processes.")
@click.pass_obj
def export_command(
    state: _State,
    fmt: str,
    output: str,
    pages: tuple[str, ...],
    query: str | None,
    document: str | None,
    colour: bool,
    text: str,
    dpi: int,
    force: bool,
    jobs: int | None,
) -> None:
    """Export the verification record, or a safe copy of pages; files are replaced atomically."""
    from workbench import export

    if fmt != "safe-pdf":
        given = [
            name
            for name, value in (
                ("--pages", pages),
                ("--query", query),
                ("--document", document),
                ("--force", force),
                ("--jobs", jobs),
            )
            if value
        ]
        if given:
            raise UsageError(f"{given[0]} applies only to --format safe-pdf")
    with state.open_case() as case:
        try:
            if fmt == "safe-pdf":
                options = {"colour": colour, "text": text, "dpi": dpi, "force": force}
                _export_safe_pdf(case, output, pages, query, document, jobs=jobs, **options)
                return
            summary = export.export(case, fmt, output)
        except OSError as error:  # the output's drive, not the case's, is full or read-only
            folder = os.path.dirname(os.path.abspath(output))
            translated = from_os_error(error, folder, case=False)
            if translated is None:
                raise
            raise translated from error
    click.echo(summary)


def _export_safe_pdf(
    case: Case,
    output: str,
    pages: tuple[str, ...],
    query: str | None,
    document: str | None,
    **options: Any,
) -> None:
    from workbench import safe_pdf

    if query:
        _sync_quietly(case)
    page_ids = safe_pdf.select_pages(case, pages=pages, query=query, document=document)
    show = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if show:
            click.echo(f"\rsafe-pdf: page {done}/{total}", err=True, nl=done == total)

    report = safe_pdf.export_safe_pdf(case, output, page_ids, progress=progress, **options)
    for line in safe_pdf.describe(report):
        click.echo(line, err=line.startswith("warning:"))


@main.command(name="check")
@click.option(
    "--only",
    default=None,
    help="Comma-separated check names (default: every check). 'workbench check --list' names them.",
)
@click.option("--list", "list_checks", is_flag=True, help="Name every check and what it looks for.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per finding produced.")
@click.pass_obj
def check_command(state: _State, only: str | None, list_checks: bool, as_json: bool) -> None:
    """Run the checks on what changed since their last run; print the findings produced.

    Checks are incremental: a file or document whose inputs did not change is not
    checked again and keeps its findings. 'workbench findings' lists them all.
    """
    from workbench import checks, findings

    if list_checks:
        for name in checks.names():
            click.echo(f"{name:<20} {checks.get(name).summary}")
        return
    with state.open_case(write=True) as case:
        report = findings.run_checks(case, only.split(",") if only else None)
        _sync_quietly(case)
    for record in report.produced:
        _print_json(record) if as_json else click.echo(_finding_line(record))
    click.echo(
        f"{len(report.produced)} finding(s) from {report.units_checked} file(s)/document(s)"
        f" checked; {report.units_unchanged} unchanged since the last check",
        err=True,
    )


@main.command(name="findings")
@click.option("--check", "check_name", default=None, help="Only this check's findings.")
@click.option(
    "--severity",
    type=click.Choice(["info", "warn", "alert"]),
    default=None,
    help="Only findings of this severity.",
)
@click.option("--page", "page_id", default=None, help="Only findings about this page.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per finding.")
@click.pass_obj
def findings_command(
    state: _State, check_name: str | None, severity: str | None, page_id: str | None, as_json: bool
) -> None:
    """List the findings of the checks (dismissed ones too, marked as such)."""
    from workbench import findings

    with state.open_case() as case:
        records = findings.finding_records(
            case, check=check_name, severity=severity, page_id=page_id
        )
    for record in records:
        _print_json(record) if as_json else click.echo(_finding_line(record))


@main.group(name="finding")
def finding_group() -> None:
    """Act on one finding: dismiss it, with a note, in the review log."""


@finding_group.command(name="dismiss")
@click.argument("finding_id")
@click.option("--note", required=True, help="Why the finding does not matter (kept in the log).")
@REVIEWER_OPTION
@click.pass_obj
def finding_dismiss(state: _State, finding_id: str, note: str, reviewer: str | None) -> None:
    """Dismiss a finding; the dismissal is an event in the hash-chained review log."""
    from workbench import findings

    with state.open_case(write=True) as case:
        who = review.resolve_reviewer(case, reviewer)
        record = findings.dismiss(case, finding_id, note=note, reviewer=who)
        _sync_quietly(case)
    click.echo(f"dismissed {record['finding_id']} ({record['check']}) by {who}")


@main.command(name="revisions")
@click.argument("spec", metavar="PAGE_OR_SOURCE")
@click.option(
    "--extract",
    "extract_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write each earlier revision into this folder as a PDF of its own.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per revision.")
@click.pass_obj
def revisions_command(state: _State, spec: str, extract_dir: str | None, as_json: bool) -> None:
    """Show the versions a PDF keeps inside it (incremental updates) and what each changed.

    PAGE_OR_SOURCE is a page id, the path of an ingested PDF or its SHA-256 (a prefix of
    8 characters or more will do). The file is checked against its custody hash first.
    """
    from pathlib import Path

    from workbench import revisions

    with state.open_case() as case:
        path, found, data = revisions.source_revisions(case, spec)
    written = []
    if extract_dir:
        folder = Path(extract_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for revision in found[:-1]:
            target = folder / f"{Path(path).stem}.rev{revision.number}.pdf"
            target.write_bytes(data[: revision.end])
            written.append(str(target))
    if as_json:
        for revision in found:
            _print_json(revision.as_json())
    else:
        updates = len(found) - 1
        click.echo(f"{path}: {len(found)} revision(s), {updates} incremental update(s)")
        for revision in found:
            last = "  (the file as it is)" if revision is found[-1] and updates else ""
            pages = "unreadable" if not revision.readable else f"{revision.page_count} page(s)"
            click.echo(
                f"revision {revision.number}  bytes {revision.end:>10,}  {pages}  "
                f"sha256 {revision.sha256}{last}"
            )
            if revision.problem:
                click.echo(f"  cannot be read: {revision.problem}")
            for change in revision.text_changes:
                click.echo(
                    f"  page {change.page_number}: removed {' '.join(change.removed) or '-'}"
                    f" | added {' '.join(change.added) or '-'}"
                )
            for label, numbers in (
                ("pages added", revision.pages_added),
                ("pages removed", revision.pages_removed),
            ):
                if numbers:
                    click.echo(f"  {label}: {', '.join(map(str, numbers))}")
            for key, (old, new) in revision.metadata_changes.items():
                click.echo(f"  {key}: {old!r} -> {new!r}")
    for target in written:
        click.echo(f"wrote {target}", err=True)


def _run_checks_after_ingest(case: Case) -> str | None:
    """The checks on what the ingest added; the pages are stored whatever happens here."""
    from workbench import findings

    try:
        report = findings.run_checks(case)
    except WorkbenchError as error:
        click.echo(f"warning: the checks did not run ({error}); run 'workbench check'", err=True)
        return None
    _sync_quietly(case)
    if not report.produced:
        return None
    counts = {}
    for record in report.produced:
        counts[record["severity"]] = counts.get(record["severity"], 0) + 1
    said = ", ".join(f"{counts[s]} {s}" for s in ("alert", "warn", "info") if s in counts)
    return f"checks: {len(report.produced)} new finding(s) ({said}); see 'workbench findings'"


def _finding_line(record: dict[str, Any]) -> str:
    pages = record["page_ids"]
    where = ""
    if pages:
        where = pages[0] + (f" (+{len(pages) - 1})" if len(pages) > 1 else "")
    state = "  [dismissed]" if record["dismissed"] else ""
    return (
        f"{record['finding_id']}  {record['severity']:<5}  {record['check']:<18}  "
        f"{where:<16}  {record['message']}{state}"
    )


def _sync_quietly(case: Case) -> None:
    from workbench import index  # Whoosh: imported by the commands that use the index

    try:
        _check_index(case)
        index.sync(case, timeout=5)
    except WorkbenchError as error:
        click.echo(f"warning: search index not updated ({error})", err=True)


def _check_index(case: Case) -> None:
    """A missing or damaged search index is rebuilt from the case; say so in one line."""
    from workbench import index  # Whoosh: imported by the commands that use the index

    notice = index.check(case)
    if notice:
        click.echo(f"warning: {notice}", err=True)


def _highlight(snippet: str, spans: list[tuple[int, int]], tty: bool) -> str:
    """Mark matches: bold reverse video on a terminal, [brackets] elsewhere."""
    start_mark, end_mark = ("\033[1;7m", "\033[0m") if tty else ("[", "]")
    out, last = [], 0
    for start, end in sorted(spans):
        if start < last:
            continue
        out.append(snippet[last:start])
        out.append(start_mark + snippet[start:end] + end_mark)
        last = end
    out.append(snippet[last:])
    return "".join(out)


def _describe_page(record: dict[str, Any]) -> Iterator[str]:
    yield f"{record['page_id']}  page {record['page_number']} of {record['source_path']}"
    yield f"  source sha256  {record['source_sha256']}"
    yield f"  page sha256    {record['page_sha256']}"
    source = record["text_source"]
    if source == "ocr":
        ocr = record["ocr"]
        yield (
            f"  text           OCR ({ocr['engine']}, {ocr['lang']}), confidence "
            f"{ocr['confidence']}, rotated {ocr['rotation']}°, deskewed {ocr['skew']}°"
        )
    else:
        yield f"  text           {source}, {record['char_count']} characters"
    marker = record["page_marker"]
    if marker:
        yield f"  page marker    {marker['number']} of {marker['total']} ({marker['text']!r})"
    for found in record["dates"]:
        yield f"  date           {found['iso']}  {found['calendar']:<9} {found['original']!r}"
    if record["error"]:
        yield f"  error          {record['error']}"
    if "hidden_text" in record:
        yield from _describe_hidden(record)
    yield ""
    yield record["text"]


def _describe_hidden(record: dict[str, Any]) -> Iterator[str]:
    """The --hidden section: what is still under the boxes, said to be hidden text."""
    boxes = record["hidden_text"]
    if record["text_source"] == "ocr":
        yield "  hidden text    none: the page's text was read by OCR from what it shows"
        return
    if record["text_source"] != "layer":
        yield "  hidden text    none: the page has no text"
        return
    if not boxes:
        yield "  hidden text    none under boxes on this page"
        return
    total = sum(box["characters"] for box in boxes)
    yield (
        f"  HIDDEN TEXT    {total} characters under {len(boxes)} "
        f"box{'es' if len(boxes) > 1 else ''}, still in the "
        "file (selectable, extractable): not for publication"
    )
    for number, box in enumerate(boxes, start=1):
        x0, y0, x1, y1 = box["rect"]
        yield (
            f"    box {number} at ({x0}, {y0})-({x1}, {y1}) pt, {box['colour']}, "
            f"{box['characters']} characters, {box['how']}:"
        )
        yield f"      HIDDEN: {box['text']}"


def _summary(report: IngestReport) -> str:
    parts = [f"ingested {report.files_ingested} file(s), {report.pages_added} page(s)"]
    if report.pages_ocr:
        parts[0] += f" ({report.pages_ocr} by OCR)"
    if report.files_already:
        parts.append(f"{report.files_already} already in the case")
    if report.files_duplicate:
        parts.append(f"{report.files_duplicate} duplicate(s)")
    if report.failures:
        parts.append(f"{len(report.failures)} failed")
    if report.pages_reread:
        parts.append(f"{report.pages_reread} page(s) read again")
    if report.page_errors:
        parts.append(
            f"{len(report.page_errors)} page(s) not read (OCR failed; "
            "run the same command again to retry them)"
        )
    if report.page_warnings:
        parts.append(f"{len(report.page_warnings)} page warning(s)")
    return "; ".join(parts)


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, sort_keys=False))


class _Progress(IngestObserver):
    """A one-line progress bar on stderr: pages done/total, pages/s, ETA."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.started_at = time.monotonic()
        self.last_draw = 0.0
        self.total = 0

    def started(self, total_files: int, total_pages: int) -> None:
        self.total = total_pages
        self.started_at = time.monotonic()
        self._draw(0, force=True)

    def page_done(self, pages_done: int, total_pages: int) -> None:
        self._draw(pages_done, force=pages_done == total_pages)

    def file_failed(self, path: str, reason: str) -> None:
        self._clear()
        click.echo(f"error: {path}: {reason}", err=True)

    def page_error(self, path: str, message: str) -> None:
        self._clear()
        click.echo(f"error: {path}: {message}", err=True)

    def page_warning(self, path: str, message: str) -> None:
        self._clear()
        click.echo(f"warning: {path}: {message}", err=True)

    def finished(self, report: IngestReport) -> None:
        if self.enabled and self.total:
            click.echo("", err=True)

    def _clear(self) -> None:
        if self.enabled and self.total:
            click.echo("\r\033[K", err=True, nl=False)

    def _draw(self, done: int, *, force: bool = False) -> None:
        if not self.enabled or not self.total:
            return
        now = time.monotonic()
        if not force and now - self.last_draw < 0.2:
            return
        self.last_draw = now
        elapsed = max(now - self.started_at, 1e-6)
        rate = done / elapsed
        remaining = (self.total - done) / rate if rate > 0 else None
        width = 30
        filled = int(width * done / self.total)
        eta = "--:--" if remaining is None else _duration(remaining)
        line = (
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} pages  "
            f"{rate:5.1f} pages/s  ETA {eta}"
        )
        click.echo(line + "\033[K", err=True, nl=False)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def run() -> None:  # pragma: no cover - console entry point alias
    main(prog_name=os.path.basename(sys.argv[0]) or "workbench")
