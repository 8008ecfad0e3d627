"""Page work on a Dask cluster: the same jobs as the local pool, run by Dask workers.

Why it is shaped this way:
- Only the page work travels. The coordinator (the machine with the case) hashes files,
  commits them in input order and indexes them exactly as in a local run; the jobs it
  would give its own worker processes (open a file, read its metadata, analyse a page)
  go to a running Dask scheduler instead, and the same worker function
  (``pipeline._worker_call``) runs them there.
- Workers never need the coordinator's filesystem: the coordinator reads each file,
  checks the bytes against the custody hash taken when it was hashed, and scatters them
  to the cluster once; every job of the file gets them from there. What a worker reads is
  therefore exactly what was hashed.
- A worker that dies (killed, crashed, machine gone) is Dask's to handle: it runs that
  worker's jobs again elsewhere; a job that keeps killing workers ends as a crashed job
  (Dask's ``KilledWorker``), which fails its file as a local crash does. A job past the
  time limit is stopped by a watchdog in the worker, which tells the coordinator (a Dask
  event) and ends the worker process (MuPDF cannot be interrupted from Python); the job
  is then cancelled rather than run again.
- Dask is an optional extra (``pip install workbench[cluster]``) and is imported here
  only, and only when a cluster is asked for: a local ingest never loads it and never
  opens a socket.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import pickle
import platform
import queue
import signal
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench import __version__, inputs, readers
from workbench.errors import ClusterError, OcrError, SourceError, UsageError

CLUSTER_ENV = "WORKBENCH_CLUSTER"
# seconds to reach the scheduler, and to wait for a first worker to join it
CONNECT_TIMEOUT = 10.0
# files whose bytes stay on the cluster after their last job came back (the next jobs
# are usually the same file's)
KEEP_FILES = 4
# times a job whose file's bytes were lost with a worker is sent again; past that it
# has lost every worker it was given and fails its file as a crash (as Dask's own
# allowed-failures, 3 by default, does for a job that kills workers)
RESEND_LIMIT = 3
# seconds to fetch a finished job's result from its worker
RESULT_TIMEOUT = 60.0
# a scatter that failed while the client's connection to the scheduler is up is tried
# again (a worker died under it), this often, after this pause
SCATTER_TRIES = 3
SCATTER_PAUSE = 0.5
_TIMEOUT_TOPIC = "workbench-job-timeout"
# a job's page as read up to its OCR (pickled), sent when Tesseract starts on it: if the
# worker then crashes or hangs in Tesseract, the page is kept without text as an OCR
# failure, as the local pool keeps it (pipeline._Workers._in_ocr), not its file failed
_OCR_TOPIC = "workbench-job-ocr"
_INSTALL_HINT = "install the cluster extra: pip install 'workbench[cluster]' (make setup does)"


def _distributed() -> Any:
    """The ``distributed`` package, imported on first use (an optional extra)."""
    try:
        import distributed
    except ImportError:
        raise UsageError(f"--cluster needs Dask distributed: {_INSTALL_HINT}") from None
    if not os.environ.get("WORKBENCH_DEBUG"):
        # Dask logs to stderr (reconnection attempts, tracebacks of lost connections);
        # on the coordinator what matters reaches the user as one `error:` line instead
        # (its config gives some child loggers, distributed.client among them, a stderr
        # handler of their own: every one is replaced)
        names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] == "distributed"]
        for name in ["distributed", *names]:
            dask_logger = logging.getLogger(name)
            if dask_logger.handlers or name == "distributed":
                for handler in list(dask_logger.handlers):
                    dask_logger.removeHandler(handler)
                # (a NullHandler, else Python's last-resort handler prints to stderr)
                dask_logger.addHandler(logging.NullHandler())
                dask_logger.propagate = False
    return distributed


def cluster_address(given: str | None) -> str | None:
    """The scheduler address from ``--cluster``, else WORKBENCH_CLUSTER, else None."""
    address = (given or os.environ.get(CLUSTER_ENV, "")).strip()
    if not address:
        return None
    if "://" not in address:
        address = "tcp://" + address
    if not address.startswith(("tcp://", "tls://")):
        raise UsageError(
            f"cluster address {address!r} is not a Dask scheduler address like tcp://HOST:8786"
        )
    return address


def connect(address: str, timeout: float = CONNECT_TIMEOUT) -> Any:
    """A Dask client on the scheduler at ``address`` with at least one worker."""
    distributed = _distributed()
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise ClusterError(
            f"{address}: cannot reach the Dask scheduler ({_reason(error)}); start it with "
            "'dask scheduler' on that machine, or check the address and the firewall"
        ) from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError):
        _close(client)
        raise ClusterError(
            f"{address}: the Dask scheduler has no workers; start them with "
            f"'dask worker {address} --nthreads 1 --nworkers N' in workbench's environment"
        ) from None
    return client


def _reason(error: BaseException) -> str:
    text = readers.printable(str(error)).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


def _close(client: Any) -> None:
    with contextlib.suppress(Exception):  # a scheduler already gone: nothing left to close
        client.close(timeout=5)


# ----- what each worker has --------------------------------------------------------------


def worker_facts() -> dict[str, Any]:
    """Run on each worker: the versions that decide a page's text, languages, cores."""
    import PIL
    import pymupdf

    from workbench import ocr

    facts: dict[str, Any] = {
        "workbench": __version__,
        "python": platform.python_version(),
        "pymupdf": pymupdf.VersionBind,
        "pillow": PIL.__version__,
        "cores": os.cpu_count(),
        "host": platform.node(),
    }
    facts["dask"] = _dask_settings()
    try:
        facts["tesseract"] = ocr.tesseract_version()
        facts["languages"] = sorted(ocr.available_languages())
    except OcrError as error:
        facts["tesseract"] = None
        facts["languages"] = []
        facts["problem"] = str(error)
    return facts


def _dask_settings() -> dict[str, Any]:
    """The worker's Dask settings that cost CPU on every page (README: Running a cluster)."""
    import dask
    from dask.utils import parse_timedelta

    return {
        "profiler": bool(dask.config.get("distributed.worker.profile.enabled", False)),
        "tick_seconds": parse_timedelta(dask.config.get("distributed.admin.tick.interval", "1s")),
    }


# Dask's event-loop watch more often than this (its default: every 20 ms) costs more CPU
# than the page work can spare (README: Running a cluster)
SLOWEST_TICK = 0.5

# the versions every worker must share: page text, fingerprints and renders depend on them
MUST_MATCH = ("workbench", "tesseract", "pymupdf", "pillow")


@dataclass
class ClusterReport:
    """What ``workbench cluster check`` found: each worker, and what is wrong."""

    address: str
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # settings that slow the work, not errors

    @property
    def ok(self) -> bool:
        return not self.problems


def check_cluster(address: str, lang: str | None = None, *, client: Any = None) -> ClusterReport:
    """Ask every worker for its versions, languages and cores; name what does not match.

    Mismatched versions would make page text differ with the worker that read it; a
    worker without a language pack ``lang`` needs would fail its pages' OCR. Each is
    one problem line, naming the worker once.
    """
    own = client is None
    client = connect(address) if own else client
    try:
        try:
            facts = client.run(worker_facts)
            threads = {
                name: info.get("nthreads")
                for name, info in client.scheduler_info()["workers"].items()
            }
        except (OSError, TimeoutError) as error:
            raise ClusterError(
                f"{address}: the Dask scheduler went away ({_reason(error)})"
            ) from None
    finally:
        if own:
            _close(client)
    report = ClusterReport(address=address)
    for worker in sorted(facts):
        report.workers[worker] = dict(facts[worker], nthreads=threads.get(worker))
    report.problems = problems(report.workers, lang)
    report.notes = notes(report.workers)
    return report


def notes(workers: dict[str, dict[str, Any]]) -> list[str]:
    """Settings of these workers that cost time on every page: one line per setting."""
    found: list[str] = []

    def named(names: list[str]) -> str:
        return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")

    profiling = [w for w, info in workers.items() if (info.get("dask") or {}).get("profiler")]
    if profiling:
        found.append(
            f"worker(s) {named(profiling)} run Dask's statistical profiler (it samples every "
            "10 ms); start them with DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False "
            "(README: Running a cluster)"
        )
    ticking = [
        w
        for w, info in workers.items()
        if (info.get("dask") or {}).get("tick_seconds", SLOWEST_TICK) < SLOWEST_TICK
    ]
    if ticking:
        found.append(
            f"worker(s) {named(ticking)} check Dask's event loop every "
            f"{workers[ticking[0]]['dask']['tick_seconds'] * 1000:g} ms; start them with "
            "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL=1s and the other settings in README: "
            "Running a cluster"
        )
    threaded = [w for w, info in workers.items() if int(info.get("nthreads") or 1) > 1]
    if threaded:
        found.append(
            f"worker(s) {named(threaded)} run more than one thread: pages of one worker then "
            "share its Python process; start one single-threaded worker per core "
            "(--nthreads 1 --nworkers N)"
        )
    return found


def problems(workers: dict[str, dict[str, Any]], lang: str | None = None) -> list[str]:
    """What is wrong with these workers (their ``worker_facts``): one line per problem."""
    from workbench import ocr

    found: list[str] = []
    for worker, info in workers.items():
        if info.get("problem"):
            found.append(f"worker {worker}: {info['problem']}")
    for key in MUST_MATCH:
        seen: dict[str, list[str]] = {}
        for worker, info in workers.items():
            if info.get(key) is not None:
                seen.setdefault(str(info[key]), []).append(worker)
        if key == "workbench":
            seen.setdefault(__version__, []).append("this machine")
        if len(seen) > 1:
            versions = "; ".join(f"{v} on {', '.join(ws)}" for v, ws in sorted(seen.items()))
            found.append(
                f"{key} versions differ ({versions}): page text would depend on the worker "
                "that read the page; install the same versions everywhere"
            )
    codes = [code.strip() for code in (lang or "").split("+") if code.strip()]
    for worker, info in workers.items():
        if info.get("tesseract") is None:
            continue
        missing = [code for code in codes if code not in info.get("languages", ())]
        if missing:
            packages = " ".join(ocr._apt_package(code) for code in missing)
            names = ", ".join(repr(code) for code in missing)
            found.append(
                f"worker {worker}: Tesseract has no language pack for {names}; "
                f"install it there with: sudo apt-get install {packages}"
            )
    return found


# ----- the pool --------------------------------------------------------------------------


class _Resend(Exception):
    """The job's result was lost with its worker: send the job again."""


class _Lost(Exception):
    """The job's bytes could not be sent (the file changed or cannot be read)."""


class ClusterWorkers:
    """The local pool's interface (``pipeline._Workers``) on a Dask cluster.

    ``jobs`` is the cluster's thread count when connected (one page per thread).
    ``depth``: jobs in flight per thread; more than locally, since each job's round
    trip through the scheduler takes milliseconds (as long as a born-digital page).
    """

    depth = 8

    def __init__(self, address: str, limit: float, lang: str) -> None:
        self.address = address
        self.limit = limit
        self._client = connect(address)
        try:
            report = check_cluster(address, lang, client=self._client)
            language_problems = [p for p in report.problems if "language pack" in p]
            if language_problems or any(i.get("problem") for i in report.workers.values()):
                raise OcrError("; ".join(report.problems))
            if not report.ok:
                raise ClusterError(f"{address}: " + "; ".join(report.problems))
            self.jobs = max(1, sum(int(i.get("nthreads") or 1) for i in report.workers.values()))
        except BaseException:
            _close(self._client)
            raise
        self._run_id = uuid.uuid4().hex[:12]
        self._ids = itertools.count()
        self._in_flight: dict[Any, tuple[int, Any]] = {}  # future -> (task id, task)
        self._done: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._ready: list[tuple[Any, Any, BaseException | None]] = []
        self._data: dict[str, Any] = {}  # sha256 -> future of the file's SourceBytes
        self._users: dict[str, int] = {}  # sha256 -> jobs in flight that need it
        self._idle_data: OrderedDict[str, None] = OrderedDict()
        self._timed_out: set[str] = set()
        self._in_ocr: dict[str, bytes] = {}  # job key -> its page so far (pickled)
        self._resent: dict[int, int] = {}  # id(task) -> times sent again after losing its bytes
        self._lock = threading.Lock()
        self._client.subscribe_topic(_TIMEOUT_TOPIC, self._on_timeout)
        self._client.subscribe_topic(_OCR_TOPIC, self._on_ocr)

    # the interface of pipeline._Workers

    @property
    def busy(self) -> int:
        return len(self._in_flight)

    def accepting(self) -> bool:
        return True  # Dask itself re-runs what a dead worker held

    def idle(self) -> bool:
        return not self._in_flight and not self._ready

    def submit(self, task: Any) -> None:
        from workbench import pipeline

        task_id = next(self._ids)
        try:
            data = self._bytes_of(task)
        except _Lost as lost:
            self._ready.append((task, None, lost.args[0]))
            return
        key = f"workbench-{self._run_id}-{task_id}"
        try:
            future = self._client.submit(
                _cluster_call,
                pipeline._worker_call,
                self.limit,
                task_id,
                task.path,
                task.step,
                task.fn,
                task.args,
                data,
                key=key,
                pure=False,
            )
        except (OSError, TimeoutError, RuntimeError) as error:
            raise self._gone(error) from None
        self._in_flight[future] = (task_id, task)
        if task.sha256 is not None:
            self._users[task.sha256] = self._users.get(task.sha256, 0) + 1
        future.add_done_callback(self._done.put)

    def wait(self) -> list[tuple[Any, Any, BaseException | None]]:
        """Wait a little for jobs; return those that ended: (task, result, error)."""
        outcomes, self._ready = self._ready, []
        if not self._in_flight:
            return outcomes
        finished: list[Any] = []
        with contextlib.suppress(queue.Empty):
            finished.append(self._done.get(timeout=0 if outcomes else 0.5))
            while True:
                finished.append(self._done.get_nowait())
        if self._client.status not in ("running", "connecting") or (
            self._client.status == "connecting" and not finished
        ):
            raise self._gone(None)
        with self._lock:
            overdue = [f for f in self._in_flight if f.key in self._timed_out]
        if overdue:  # stopped by a worker's watchdog: never run again
            with contextlib.suppress(Exception):
                self._client.cancel(overdue, force=True)
            finished += [f for f in overdue if f not in finished]
        for future in finished:
            if future not in self._in_flight:
                continue
            task_id, task = self._in_flight.pop(future)
            self._release(task)
            if self._lost_with_its_bytes(future):
                self._send_again(task, outcomes, future.key)
                continue
            try:
                outcomes.append(self._outcome(future, key=future.key, task=task))
            except _Resend:
                self._forget_lost_bytes()
                self._send_again(task, outcomes, future.key)
        return outcomes

    def _send_again(self, task: Any, outcomes: list[tuple[Any, Any, Any]], key: str) -> None:
        """Send a job that lost its worker again (its file's bytes scattered again if
        they were lost too); past RESEND_LIMIT it fails its file as a crash does."""
        tries = self._resent.get(id(task), 0)
        if tries < RESEND_LIMIT:
            self._resent[id(task)] = tries + 1
            with self._lock:  # the job goes again under a new key
                self._in_ocr.pop(key, None)
            self.submit(task)
        else:  # it lost every worker it was given: a crash, as locally
            outcomes.append(self._crashed(task, key))

    def _lost_with_its_bytes(self, future: Any) -> bool:
        """A job cancelled while the scheduler is up lost its input: the only copy of
        the file's bytes was on a worker that died (Dask cannot compute scattered data
        again; the job usually runs where its bytes are, so a job that crashes its
        worker ends here rather than as Dask's KilledWorker). Those bytes are forgotten,
        to be sent again."""
        if future.status != "cancelled" or self._client.status != "running":
            return False
        with self._lock:
            if future.key in self._timed_out:
                return False
        self._forget_lost_bytes()
        return True

    def _forget_lost_bytes(self) -> None:
        for sha256, data in list(self._data.items()):
            if data.status != "finished":
                del self._data[sha256]
                self._idle_data.pop(sha256, None)

    def close(self, *, kill: bool) -> None:
        if kill and self._in_flight:
            with contextlib.suppress(Exception):  # the scheduler may be gone already
                self._client.cancel(list(self._in_flight), force=True)
        self._in_flight.clear()
        self._data.clear()
        _close(self._client)

    # inside

    def _outcome(self, future: Any, *, key: str, task: Any) -> tuple[Any, Any, Any]:
        from distributed.scheduler import KilledWorker

        from workbench import pipeline

        with self._lock:
            timed_out = key in self._timed_out
        if timed_out:
            with self._lock:
                page = self._in_ocr.pop(key, None)
            if page is not None:  # stopped in Tesseract: the page alone, as locally
                reason = pipeline._ocr_stopped(inputs.OCR_TIMEOUT + self.limit)
                return task, inputs.page_without_ocr(pickle.loads(page), reason), None
            return task, None, pipeline._WorkerTimedOut(self.limit)
        from distributed.utils import CancelledError

        status = future.status
        try:
            if status == "finished":
                with self._lock:
                    self._in_ocr.pop(key, None)
                return task, future.result(timeout=RESULT_TIMEOUT), None
            if status == "error":
                error = future.exception(timeout=RESULT_TIMEOUT)
                if isinstance(error, KilledWorker):
                    return self._crashed(task, key)
                return task, None, error
        except (OSError, TimeoutError, CancelledError) as error:
            if self._client.status == "running":
                # the worker holding the result died before it was fetched (Dask then
                # computes it again, if its input still exists): send the job afresh
                raise _Resend() from None
            raise self._gone(error) from None
        # cancelled: the scheduler forgot the job (it restarted or lost the client)
        raise self._gone(None)

    def _crashed(self, task: Any, key: str) -> tuple[Any, Any, Any]:
        """A job that crashed every worker it was given: its file fails as a crash does,
        unless it crashed in Tesseract, where the page alone is an OCR failure."""
        from workbench import pipeline

        with self._lock:
            page = self._in_ocr.pop(key, None)
        if page is not None:
            return task, inputs.page_without_ocr(pickle.loads(page), pipeline._OCR_CRASHED), None
        return task, None, pipeline._WorkerCrashed()

    def _on_ocr(self, event: tuple[float, Any]) -> None:
        """A job's page reached Tesseract: keep the page so far, in case it never returns."""
        _, message = event
        key = message.get("key") if isinstance(message, dict) else None
        if not isinstance(key, str) or not key.startswith(f"workbench-{self._run_id}-"):
            return
        with self._lock:  # runs in Dask's event loop
            self._in_ocr[key] = message["page"]

    def _on_timeout(self, event: tuple[float, Any]) -> None:
        """A worker's watchdog stopped a job past the time limit: do not run it again."""
        _, message = event
        key = message.get("key") if isinstance(message, dict) else None
        if not isinstance(key, str) or not key.startswith(f"workbench-{self._run_id}-"):
            return
        with self._lock:  # runs in Dask's event loop: wait() cancels the job
            self._timed_out.add(key)

    def _bytes_of(self, task: Any) -> Any:
        """The future of the file's bytes on the cluster, scattered on first use."""
        sha256 = task.sha256
        if sha256 is None:
            return None
        self._idle_data.pop(sha256, None)
        future = self._data.get(sha256)
        if future is not None:
            return future
        try:
            with open(task.path, "rb") as handle:
                content = handle.read()
        except OSError as error:
            raise _Lost(SourceError(task.path, f"cannot be read ({error.strerror})")) from None
        if hashlib.sha256(content).hexdigest() != sha256:
            raise _Lost(
                SourceError(
                    task.path, "the file changed while it was being ingested; run the ingest again"
                )
            )
        future = self._scatter(readers.SourceBytes(sha256, content))
        self._data[sha256] = future
        return future

    def _scatter(self, data: readers.SourceBytes) -> Any:
        """Scatter a file's bytes; a worker dying meanwhile is not the scheduler going.

        The scheduler forwards scattered data to a worker, and when that worker dies
        in the middle, Dask's scheduler treats the closed connection as its client's
        and drops it: the client sees "Stream is closed" while the scheduler is up.
        The client's own connection tells the two apart (it goes to "connecting" within
        milliseconds when the scheduler is gone), so the scatter is tried again.
        """
        attempt = 1
        while True:
            try:
                return self._client.scatter(data, hash=False)
            except (OSError, TimeoutError) as error:
                time.sleep(SCATTER_PAUSE)
                if attempt == SCATTER_TRIES or self._client.status != "running":
                    raise self._gone(error) from None
            attempt += 1

    def _release(self, task: Any) -> None:
        """A job came back: keep its file's bytes for a few more files, then let go."""
        sha256 = task.sha256
        if sha256 is None:
            return
        self._users[sha256] = self._users.get(sha256, 1) - 1
        if self._users[sha256] > 0:
            return
        del self._users[sha256]
        self._idle_data[sha256] = None
        while len(self._idle_data) > KEEP_FILES:
            old, _ = self._idle_data.popitem(last=False)
            self._data.pop(old, None)  # the last reference: Dask forgets the bytes

    def _gone(self, error: BaseException | None) -> ClusterError:
        detail = f" ({_reason(error)})" if error is not None else ""
        return ClusterError(
            f"{self.address}: the Dask scheduler went away during the ingest{detail}; "
            "every file committed before is kept: start the scheduler again and run the "
            "same command to resume"
        )


# ----- on a worker -----------------------------------------------------------------------


def _cluster_call(
    worker_call: Callable[..., dict[str, Any]],
    limit: float,
    task_id: int,
    path: str,
    step: str,
    fn: Callable[..., dict[str, Any]],
    args: tuple[Any, ...],
    data: readers.SourceBytes | None,
) -> dict[str, Any]:
    """Run one job on a Dask worker with the ingest's time limit (a watchdog thread).

    Past the limit the watchdog tells the coordinator (an event naming the job) and ends
    the worker process and its Tesseract: a stuck MuPDF call cannot be interrupted.
    """
    from distributed import get_worker

    _plain_malloc()
    worker = get_worker()
    key = _current_key()
    deadline = [time.monotonic() + limit]

    def phase(name: str, pending: dict[str, Any] | None = None) -> None:
        if name == "ocr":  # Tesseract has its own limit, added once a page reaches OCR
            deadline[0] = time.monotonic() + inputs.OCR_TIMEOUT + limit
            if pending is not None:  # (pickled: an event travels as msgpack)
                worker.log_event(_OCR_TOPIC, {"key": key, "page": pickle.dumps(pending)})

    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(0.5):
            if time.monotonic() > deadline[0]:
                worker.log_event(_TIMEOUT_TOPIC, {"key": key, "path": path, "step": step})
                time.sleep(1.0)  # let the event reach the scheduler
                _kill_children(os.getpid())
                os.kill(os.getpid(), signal.SIGKILL)

    readers.phase_hook = phase
    watchdog = threading.Thread(target=watch, name="workbench-watchdog", daemon=True)
    watchdog.start()
    try:
        return worker_call(task_id, path, step, fn, args, data)
    except Exception as error:
        # Dask pickles the exception with the one it replaced (its __context__: a MuPDF
        # error that cannot be unpickled, which would turn a SourceError into a bare
        # Exception); the coordinator needs the error alone, as the local pool sends it
        error.__context__ = error.__cause__ = None
        raise error from None
    finally:
        finished.set()
        readers.phase_hook = None


# Dask's nanny starts each worker with MALLOC_TRIM_THRESHOLD_=65536 (its
# distributed.nanny.pre-spawn-environ), so that a long-lived worker hands freed memory back
# to the system soon. Setting it also turns off glibc's adaptive mmap threshold: every
# buffer over 128 KB (a 300-dpi page image is 4-9 MB, and Tesseract makes several) is then
# mapped afresh and its memory faulted in again on each use, in the worker and in every
# Tesseract it starts (they inherit the variable). Measured on 8 scanned files: 0.5 s more
# system time in the worker and 0.35 s in its Tesseracts, 8-20% more wall time. A
# workbench job keeps nothing once it returns, so a worker runs with the thresholds a
# local worker reaches by itself (glibc's adaptive maximum: 32 MB, trim at twice that).
_MMAP_THRESHOLD = 32 * 1024 * 1024
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_malloc_plain = False


def _plain_malloc() -> None:
    """Undo the nanny's malloc setting in this worker and the Tesseracts it starts (once)."""
    global _malloc_plain
    if _malloc_plain:
        return
    _malloc_plain = True
    if os.environ.pop("MALLOC_TRIM_THRESHOLD_", None) is None:
        return  # not started by a nanny that sets it: glibc adapts by itself
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, 2 * _MMAP_THRESHOLD)
    except (OSError, AttributeError):  # not glibc (musl, macOS): its own allocator's rules
        pass


def _current_key() -> str | None:
    try:
        from distributed.worker import thread_state

        return getattr(thread_state, "key", None)
    except ImportError:
        return None


def _kill_children(pid: int) -> None:
    from workbench import pipeline

    for child in pipeline._children(pid):
        with contextlib.suppress(OSError):
            os.kill(child, signal.SIGKILL)
