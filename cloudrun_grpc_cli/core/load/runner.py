"""The coordinator of a load run: the method and data from a session, the
workers, their progress, and the merged report.

    with open_session(target, settings) as sess:
        load = prepare_load(sess, "pkg.Svc/Method", messages, spec)
        report = run_load(load, on_progress=print)

`prepare_load` resolves METHOD through the session's schema and turns the
JSON data into request bytes once. `run_load` starts the workers (one: a
thread of this process, sharing the session's auth plan and its token; more:
processes of their own, started with "spawn" since grpc does not survive a
fork, each minting its token once), waits until every worker is connected,
gives them one start time, gathers their progress every TICK and their final
figures. Ctrl-C stops the workers and returns what they had measured, marked
interrupted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection as Link
from multiprocessing.connection import wait as wait_links
from typing import Any, NamedTuple

from ...errors import CrgrpcError, RequestDataError
from ..session import Session
from .histogram import Latencies
from .report import Report
from .spec import LoadSpec, Share, split
from .worker import Job, Tick, WorkerResult

START_DELAY = 0.05  # seconds between "go" and the common start time
READY_SLACK = 60.0  # seconds a worker may take to start, beyond --connect-timeout
GRACE = 10.0  # default seconds in-flight requests get after a --duration run's end
STOP_WAIT = 10.0  # seconds to wait for the workers' figures after a stop


class LoadPlan(NamedTuple):
    """A resolved run: what each worker is sent."""

    method: str  # pkg.Service/Method
    kind: str
    target_address: str
    spec: LoadSpec
    jobs: tuple[Job, ...]
    session: Session

    @property
    def workers(self) -> int:
        return len(self.jobs)

    @property
    def connections(self) -> int:
        return sum(j.share.connections for j in self.jobs)

    @property
    def concurrency(self) -> int:
        return sum(j.share.concurrency for j in self.jobs)


class Progress(NamedTuple):
    """The run so far, for a live display."""

    elapsed: float  # seconds since the start
    warmup_done: int
    done: int  # measured requests finished
    errors: int
    rps: float  # measured requests per second so far
    p50_ms: float | None
    p99_ms: float | None
    measuring: bool  # past the warmup


def prepare_load(
    sess: Session,
    method_text: str,
    messages: Iterable[dict[str, Any]],
    spec: LoadSpec,
    *,
    allow_unknown: bool = False,
) -> LoadPlan:
    """Resolve the method, convert the data (exit 5 and 6 before any load), share the work."""
    from google.protobuf.message_factory import GetMessageClass

    from ..codec import to_message
    from ..schema import method_kind, method_name

    shares = split(spec)  # usage errors first
    method = sess.resolve(method_text)
    kind = method_kind(method)
    name = method_name(method)
    given = list(messages)
    if kind in ("unary", "server"):
        if len(given) > 1:
            raise RequestDataError(
                f"request data: {len(given)} messages for the {kind} method {name}, which takes one",
                "client- and bidi-streaming methods take several: each stream sends them all",
            )
        given = given or [{}]
    cls = GetMessageClass(method.input_type)
    requests = tuple(
        to_message(d, cls, index=i + 1, allow_unknown=allow_unknown).SerializeToString()
        for i, d in enumerate(given)
    )
    timeout = sess.settings.channel.timeout
    grace = timeout if timeout is not None else GRACE
    jobs = tuple(
        Job(
            target=sess.target,
            settings=sess.settings,
            path="/" + name,
            kind=kind,
            requests=requests,
            share=share,
            duration=spec.duration,
            warmup_seconds=spec.warmup.seconds,
            rate=spec.rate,
            grace=grace,
        )
        for share in shares
    )
    return LoadPlan(name, kind, sess.target.address, spec, jobs, sess)


class _Worker:
    def __init__(self, job: Job, link: Link, runner: Any) -> None:
        self.job = job
        self.link = link
        self.runner = runner  # a Thread or a Process
        self.ready = False
        self.result: WorkerResult | None = None
        self.finished = False
        self.last = Tick(0, 0, 0, None)

    @property
    def share(self) -> Share:
        return self.job.share


def _start(load: LoadPlan) -> list[_Worker]:
    import multiprocessing

    from . import worker as worker_module

    workers: list[_Worker] = []
    if load.workers == 1:
        mine, theirs = multiprocessing.Pipe()
        job = load.jobs[0]
        thread = threading.Thread(
            target=worker_module.thread_main,
            args=(job, theirs, load.session.plan),
            name="crgrpc-load-worker",
            daemon=True,
        )
        thread.start()
        return [_Worker(job, mine, thread)]
    ctx = multiprocessing.get_context("spawn")
    for job in load.jobs:
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(
            target=worker_module.process_main,
            args=(job, theirs),
            name=f"crgrpc-load-worker-{job.share.worker}",
            daemon=True,
        )
        proc.start()
        theirs.close()
        workers.append(_Worker(job, mine, proc))
    return workers


def _send(w: _Worker, message: tuple[Any, ...]) -> None:
    try:
        w.link.send(message)
    except (OSError, EOFError):
        w.finished = True


def _receive(w: _Worker) -> tuple[Any, ...] | None:
    try:
        return w.link.recv()  # type: ignore[no-any-return]
    except (OSError, EOFError):
        w.finished = True
        return None


def run_load(
    load: LoadPlan, *, on_progress: Callable[[Progress], None] | None = None
) -> Report:
    workers = _start(load)
    try:
        return _coordinate(load, workers, on_progress)
    finally:
        for w in workers:
            _send(w, ("stop",))
            w.runner.join(timeout=STOP_WAIT)
            if w.runner.is_alive() and hasattr(w.runner, "terminate"):
                w.runner.terminate()
            w.link.close()


def _coordinate(
    load: LoadPlan, workers: list[_Worker], on_progress: Callable[[Progress], None] | None
) -> Report:
    # Every worker connected (or one failed), then one start time for all.
    deadline = time.monotonic() + load.session.settings.channel.connect_timeout + READY_SLACK
    while not all(w.ready for w in workers):
        left = deadline - time.monotonic()
        if left <= 0:
            raise CrgrpcError("the load workers did not start in time")
        for link in wait_links([w.link for w in workers if not w.ready], timeout=min(left, 1.0)):
            w = next(x for x in workers if x.link is link)
            msg = _receive(w)
            if msg is None:
                raise CrgrpcError("a load worker ended before it was ready")
            if msg[0] == "failed":
                raise msg[1].error()
            w.ready = True
    start = time.monotonic() + START_DELAY
    for w in workers:
        _send(w, ("go", start))
    live = Latencies()
    interrupted = False
    try:
        _gather(load, workers, live, start, on_progress)
    except KeyboardInterrupt:
        interrupted = True
        for w in workers:
            _send(w, ("stop",))
        _collect(workers, time.monotonic() + STOP_WAIT)
    results = [w.result for w in workers if w.result is not None]
    report = Report.merge(
        results,
        method=load.method,
        kind=load.kind,
        target=load.target_address,
        spec=load.spec,
        connections=load.connections,
        sent_per_request=len(load.jobs[0].requests),
    )
    report.workers = len(workers)
    report.interrupted = interrupted
    if on_progress is not None and not interrupted:
        on_progress(_progress(workers, live, start))
    return report


def _handle(w: _Worker, msg: tuple[Any, ...], live: Latencies | None) -> None:
    kind = msg[0]
    if kind == "tick":
        tick: Tick = msg[1]
        w.last = tick
        if live is not None and tick.latencies is not None:
            live.add_encoded(tick.latencies)
    elif kind == "done":
        w.result = msg[1]
        w.finished = True
    elif kind == "failed":
        w.finished = True
        raise msg[1].error()


def _gather(
    load: LoadPlan,
    workers: list[_Worker],
    live: Latencies,
    start: float,
    on_progress: Callable[[Progress], None] | None,
) -> None:
    last_shown = 0.0
    while not all(w.finished for w in workers):
        links = [w.link for w in workers if not w.finished]
        for link in wait_links(links, timeout=0.25):
            w = next(x for x in workers if x.link is link)
            msg = _receive(w)
            if msg is not None:
                _handle(w, msg, live)
        now = time.monotonic()
        if on_progress is not None and now - last_shown >= 0.2:
            last_shown = now
            on_progress(_progress(workers, live, start))
    missing = [w.share.worker for w in workers if w.result is None]
    if missing:
        raise CrgrpcError(f"load worker {missing[0]} ended without its figures")


def _collect(workers: list[_Worker], deadline: float) -> None:
    """After a stop: the figures each worker sends back."""
    while not all(w.finished for w in workers):
        left = deadline - time.monotonic()
        if left <= 0:
            return
        links = [w.link for w in workers if not w.finished]
        for link in wait_links(links, timeout=min(left, 0.25)):
            w = next(x for x in workers if x.link is link)
            msg = _receive(w)
            if msg is not None:
                try:
                    _handle(w, msg, None)
                except CrgrpcError:
                    w.finished = True


def _progress(workers: list[_Worker], live: Latencies, start: float) -> Progress:
    now = time.monotonic()
    done = sum(w.last.done for w in workers)
    errors = sum(w.last.errors for w in workers)
    warm = sum(w.last.warmup_done for w in workers)
    spec = workers[0].job
    measuring_since = start + spec.warmup_seconds
    elapsed_measured = now - measuring_since
    rps = done / elapsed_measured if done and elapsed_measured > 0 else 0.0
    has = live.count > 0
    return Progress(
        elapsed=max(0.0, now - start),
        warmup_done=warm,
        done=done,
        errors=errors,
        rps=rps,
        p50_ms=live.percentile_ms(50) if has else None,
        p99_ms=live.percentile_ms(99) if has else None,
        measuring=done > 0 or (spec.share.warmup_requests == 0 and now >= measuring_since),
    )
