"""One worker of a load run: an asyncio loop on grpc.aio channels.

A worker dials its connections (each its own TCP connection), takes the
metadata from a TokenFeed, tells the coordinator it is ready, waits for the
common start time, then runs `concurrency` lanes. Each lane takes a ticket,
sends one request (a whole stream for streaming methods), records how long
it took, and takes the next, until the run's tickets are out.

Without a rate a lane sends its next request as soon as the last one ended
(closed loop) and latency is measured from sending. With a rate, ticket i is
due at a fixed time of one schedule (open loop); a lane sleeps until then if
early, and latency is measured from the due time, so a request that waited
for a free lane counts its wait (no coordinated omission).

Requests and answers stay bytes (serialized once by the coordinator, never
parsed): the load loop pays only grpc.aio's own cost per call.

The worker talks to the coordinator over a multiprocessing Connection:
    → ("ready",) | ("failed", FailureInfo)
    ← ("go", start_time) | ("stop",)
    → ("tick", Tick)* then ("done", WorkerResult)
and runs in a thread of the coordinator's process (one worker) or in a
process of its own (`process_main`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection as Link
from typing import NamedTuple

import grpc
import grpc.aio

from ...errors import CrgrpcError
from ...settings import Settings
from .. import aioloop
from ..auth.policy import AuthPlan
from ..channel import channel_proxy, dial_parts
from ..rpcerrors import classify, connect_error
from ..secrets import SECRETS
from ..target import Target
from .histogram import Latencies
from .spec import Share
from .tokens import Metadata, TokenFeed

TICK = 0.25  # seconds between progress reports
MAX_SAMPLES = 5  # distinct error messages kept
SAMPLE_LENGTH = 300
CANCELLED = (1, "CANCELLED")
UNKNOWN = (2, "UNKNOWN")

# A call: metadata and timeout in, the number of answer messages out.
Caller = Callable[[Metadata, "float | None"], Awaitable[int]]


class Job(NamedTuple):
    """Everything a worker needs; picklable (sent to a worker process)."""

    target: Target
    settings: Settings
    path: str  # /pkg.Service/Method
    kind: str  # unary | server | client | bidi
    requests: tuple[bytes, ...]  # serialized request messages
    share: Share
    duration: float | None
    warmup_seconds: float
    rate: float | None  # of the whole run (all workers)
    grace: float  # seconds after a --duration run's end before in-flight requests are cut


class Tick(NamedTuple):
    done: int  # measured requests finished
    errors: int
    warmup_done: int
    latencies: str | None  # the histogram of the requests finished since the last tick


class WorkerResult(NamedTuple):
    latencies: str  # encoded histogram of the measured requests
    ok: int
    errors: dict[str, int]  # NAME → count
    codes: dict[str, int]  # NAME → status number
    samples: tuple[tuple[float, str], ...]  # (first seen, "NAME: message")
    received: int  # answer messages of the requests that succeeded
    started: float | None  # the measured phase's start (time.monotonic)
    ended: float | None  # the last measured request's end
    warmup_done: int
    warmup_errors: int
    token_refreshes: int
    token_failures: int
    token_failure: str


class FailureInfo(NamedTuple):
    """A CrgrpcError, as it crosses the process boundary."""

    kind: str  # the class name in errors.py
    message: str
    hints: tuple[str, ...]
    code: int = 0
    name: str = ""
    details: str = ""
    reason: str = ""

    @classmethod
    def of(cls, err: CrgrpcError) -> FailureInfo:
        return cls(
            type(err).__name__,
            err.message,
            err.hints,
            int(getattr(err, "code", 0) or 0),
            str(getattr(err, "name", "") or ""),
            str(getattr(err, "details", "") or ""),
            str(getattr(err, "reason", "") or ""),
        )

    def error(self) -> CrgrpcError:
        from ... import errors

        if self.kind == "RpcStatusError":
            return errors.RpcStatusError(self.code, self.name, self.details, *self.hints)
        if self.kind == "ConnectError":
            return errors.ConnectError(
                self.message, *self.hints, reason=self.reason, details=self.details
            )
        cls = getattr(errors, self.kind, None)
        if isinstance(cls, type) and issubclass(cls, CrgrpcError):
            try:
                return cls(self.message, *self.hints)
            except TypeError:
                pass
        return CrgrpcError(self.message, *self.hints)


# --- channels -----------------------------------------------------------------------------


def dial(job: Job) -> list[grpc.aio.Channel]:
    """The worker's channels: the target's TLS and options (core/channel.dial_parts),
    each with a subchannel pool of its own, so each is a TCP connection of its own."""
    proxy, _ = channel_proxy(job.target, job.settings.channel)  # --insecure fetches through it
    creds, opts = dial_parts(job.target, job.settings.channel, proxy)
    opts = [*opts, ("grpc.use_local_subchannel_pool", 1)]
    address = job.target.address
    if creds is None:
        return [grpc.aio.insecure_channel(address, options=opts) for _ in range(job.share.connections)]
    return [
        grpc.aio.secure_channel(address, creds, options=opts)
        for _ in range(job.share.connections)
    ]


async def wait_ready(channel: grpc.aio.Channel, job: Job) -> None:
    """READY within --connect-timeout; the first failure ends it unless --retries."""
    timeout = job.settings.channel.connect_timeout
    patient = job.settings.channel.retries > 0
    address = job.target.address
    deadline = time.monotonic() + timeout
    state = channel.get_state(try_to_connect=True)
    while state != grpc.ChannelConnectivity.READY:
        if state == grpc.ChannelConnectivity.TRANSIENT_FAILURE and not patient:
            raise connect_error(address, await _probe(channel))
        left = deadline - time.monotonic()
        if left <= 0:
            raise connect_error(address, f"connect timeout after {timeout:g}s", "connect timeout")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(channel.wait_for_state_change(state), min(left, 0.25))
        state = channel.get_state(try_to_connect=True)


async def _probe(channel: grpc.aio.Channel) -> str:
    """gRPC's own words for why the channel is failing (a fail-fast probe call)."""
    try:
        await channel.unary_unary("/crgrpc.Probe/Probe", request_serializer=None, response_deserializer=None)(b"", timeout=5, wait_for_ready=False)
    except grpc.aio.AioRpcError as e:
        return str(e.details() or "")
    return "could not connect"


def make_caller(channel: grpc.aio.Channel, kind: str, path: str, requests: tuple[bytes, ...]) -> Caller:
    """One request of the method's kind over channel, bytes in and out."""
    if kind == "unary":
        unary = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
        first = requests[0]

        async def call_unary(md: Metadata, timeout: float | None) -> int:
            await unary(first, metadata=md, timeout=timeout)
            return 1

        return call_unary
    if kind == "server":
        server = channel.unary_stream(path, request_serializer=None, response_deserializer=None)
        first = requests[0]

        async def call_server(md: Metadata, timeout: float | None) -> int:
            n = 0
            async for _ in server(first, metadata=md, timeout=timeout):
                n += 1
            return n

        return call_server
    if kind == "client":
        client = channel.stream_unary(path, request_serializer=None, response_deserializer=None)

        async def call_client(md: Metadata, timeout: float | None) -> int:
            await client(iter(requests), metadata=md, timeout=timeout)
            return 1

        return call_client
    bidi = channel.stream_stream(path, request_serializer=None, response_deserializer=None)

    async def call_bidi(md: Metadata, timeout: float | None) -> int:
        n = 0
        async for _ in bidi(iter(requests), metadata=md, timeout=timeout):
            n += 1
        return n

    return call_bidi


# --- the run ------------------------------------------------------------------------------


class _Run:
    """The tickets, the figures and the lanes of one worker."""

    def __init__(self, job: Job, feed: TokenFeed, start: float) -> None:
        share = job.share
        self.job = job
        self.feed = feed
        self.start = start
        self.timeout = job.settings.channel.timeout
        self.rate = job.rate
        self.workers = share.workers
        self.worker = share.worker
        self.warm_n = share.warmup_requests
        self.warm_s = job.warmup_seconds
        self.total = share.total
        # Times are kept as seconds since the start (exact for a rate's schedule).
        # The measured phase starts after a warmup by time at once, after one by
        # requests with its first measured ticket.
        self.m_start: float | None = None if self.warm_n else self.warm_s
        self.end: float | None = None
        if self.m_start is not None and job.duration is not None:
            self.end = self.m_start + job.duration
        self.issued = 0
        self.m_issued = 0
        self.stopping = False  # the coordinator said stop: no more tickets
        self.cutting = False  # cancelling what still runs after the end: count it
        # Figures.
        self.latencies = Latencies()
        self.tick_latencies = Latencies()
        self.ok = 0
        self.errors: dict[str, int] = {}
        self.codes: dict[str, int] = {}
        self.samples: list[tuple[float, str]] = []
        self._sampled: set[str] = set()
        self.received = 0
        self.ended: float | None = None
        self.warm_done = 0
        self.warm_errors = 0

    def take(self) -> tuple[float, bool] | None:
        """The next ticket: (its start or due time, whether it is measured)."""
        if self.stopping:
            return None
        i = self.issued
        if self.rate is not None:
            rel = (i * self.workers + self.worker) / self.rate
        else:
            # A lane may start a hair before the start: uvloop's timers keep
            # milliseconds, so a sleep can end up to 1 ms early. Its ticket is at
            # the start, not a warmup request (it once made `-n 30` send 31).
            rel = max(0.0, time.monotonic() - self.start)
        measured = i >= self.warm_n and rel >= self.warm_s
        if measured:
            if self.m_start is None:
                self.m_start = rel
                if self.job.duration is not None:
                    self.end = rel + self.job.duration
            if self.total is not None and self.m_issued >= self.total:
                return None
            if self.end is not None and rel >= self.end:
                return None
            self.m_issued += 1
        self.issued = i + 1
        return self.start + rel, measured

    def record(self, t0: float, t1: float, measured: bool, error: tuple[int, str, str] | None, n: int) -> None:
        if not measured:
            self.warm_done += 1
            if error is not None:
                self.warm_errors += 1
            return
        self.tick_latencies.record(t1 - t0)
        if self.ended is None or t1 > self.ended:
            self.ended = t1
        if error is None:
            self.ok += 1
            self.received += n
            return
        code, name, message = error
        self.errors[name] = self.errors.get(name, 0) + 1
        self.codes[name] = code
        if len(self.samples) < MAX_SAMPLES:
            text = f"{name}: {message}" if message else name
            text = text if len(text) <= SAMPLE_LENGTH else text[: SAMPLE_LENGTH - 1] + "…"
            if text not in self._sampled:
                self._sampled.add(text)
                self.samples.append((t1, text))

    @property
    def done(self) -> int:
        return self.ok + sum(self.errors.values())

    async def lane(self, caller: Caller) -> None:
        take, record, feed, timeout = self.take, self.record, self.feed, self.timeout
        monotonic = time.monotonic
        open_loop = self.rate is not None
        while True:
            ticket = take()
            if ticket is None:
                return
            t0, measured = ticket
            if open_loop:
                await _wait_until(t0)
            try:
                n = await caller(feed.metadata, timeout)
            except grpc.aio.AioRpcError as e:
                details = SECRETS.scrub(str(e.details() or ""))
                num, name = classify(e.code(), details)
                record(t0, monotonic(), measured, (num, name, details), 0)
            except asyncio.CancelledError:
                if self.cutting:
                    grace = self.job.grace
                    why = f"still running {grace:g} s after the run's end; cancelled"
                    record(t0, monotonic(), measured, (*CANCELLED, why), 0)
                raise
            except Exception as e:  # grpc's own failures outside a status
                record(t0, monotonic(), measured, (*UNKNOWN, f"{type(e).__name__}: {e}"), 0)
            else:
                record(t0, monotonic(), measured, None, n)

    def tick(self) -> Tick:
        delta = self.tick_latencies
        encoded = None
        if delta.count:
            encoded = delta.encode()
            self.latencies.add(delta)
            delta.reset()
        return Tick(self.done, sum(self.errors.values()), self.warm_done, encoded)

    def result(self) -> WorkerResult:
        self.tick()  # fold in the last requests
        return WorkerResult(
            latencies=self.latencies.encode(),
            ok=self.ok,
            errors=dict(self.errors),
            codes=dict(self.codes),
            samples=tuple(self.samples),
            received=self.received,
            started=self.start + self.m_start if self.m_issued and self.m_start is not None else None,
            ended=self.ended,
            warmup_done=self.warm_done,
            warmup_errors=self.warm_errors,
            token_refreshes=self.feed.refreshes,
            token_failures=self.feed.failures,
            token_failure=self.feed.last_failure,
        )


async def run_job(job: Job, link: Link, plan: AuthPlan | None = None) -> None:
    """The worker's whole life, reported over link. plan: an auth plan to share (a
    worker in the coordinator's process), else one is made (and minted) here."""
    feed: TokenFeed | None = None
    channels: list[grpc.aio.Channel] = []
    try:
        try:
            if plan is None:
                plan = _plan(job)
            feed = TokenFeed(plan, job.settings.channel.headers)
            channels = dial(job)
            await asyncio.gather(*(wait_ready(ch, job) for ch in channels))
        except CrgrpcError as e:
            link.send(("failed", FailureInfo.of(e)))
            return
        link.send(("ready",))
        loop = asyncio.get_running_loop()
        order = await loop.run_in_executor(None, link.recv)
        if order[0] != "go":
            link.send(("done", None))
            return
        start = float(order[1])
        feed.start()
        await _wait_until(start)
        run = _Run(job, feed, start)
        await _supervise(run, channels, link)
        link.send(("done", run.result()))
    finally:
        if feed is not None:
            feed.stop()
        for ch in channels:
            await ch.close(None)


def _plan(job: Job) -> AuthPlan:
    from ..auth import plan_auth

    s = job.settings
    return plan_auth(
        job.target,
        s.channel,
        s.auth,
        user_headers=[name for name, _ in s.channel.headers],
        cache_dir=s.cache_dir,
    )


async def _wait_until(t: float) -> None:
    """Until time.monotonic() >= t (an event loop's sleep may end early)."""
    while (wait := t - time.monotonic()) > 0:
        await asyncio.sleep(wait)


async def _supervise(run: _Run, channels: list[grpc.aio.Channel], link: Link) -> None:
    """Run the lanes; every TICK report progress and look for a stop order; past a
    --duration run's end plus the grace, cut what still runs."""
    callers = [make_caller(ch, run.job.kind, run.job.path, run.job.requests) for ch in channels]
    lanes = {
        asyncio.ensure_future(run.lane(callers[i % len(callers)]))
        for i in range(run.job.share.concurrency)
    }
    pending = lanes
    try:
        while pending:
            done, pending = await asyncio.wait(pending, timeout=TICK)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if link.poll() and link.recv()[0] == "stop":
                run.stopping = True
                await _cancel(pending)
                return
            if run.end is not None and pending and time.monotonic() > run.start + run.end + run.job.grace:
                run.cutting = True
                await _cancel(pending)
                return
            link.send(("tick", run.tick()))
    finally:
        await _cancel(pending)


async def _cancel(tasks: set[asyncio.Task[None]]) -> None:
    for t in tasks:
        t.cancel()
    if tasks:
        await asyncio.wait(tasks)


def thread_main(job: Job, link: Link, plan: AuthPlan | None) -> None:
    """A worker in a thread of the coordinator's process."""
    _guarded(job, link, plan)


def process_main(job: Job, link: Link) -> None:
    """A worker process: Ctrl-C reaches the whole process group, and the
    coordinator stops the workers itself (so that their figures come back)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _guarded(job, link, None)


def _guarded(job: Job, link: Link, plan: AuthPlan | None) -> None:
    try:
        aioloop.run(run_job(job, link, plan))
    except (BrokenPipeError, EOFError, ConnectionResetError):
        pass  # the coordinator went away: nobody to report to
    except BaseException as e:
        try:
            failure = CrgrpcError(
                f"internal error in a load worker: {type(e).__name__}: {e}",
                "this is a bug in crgrpc; rerun with --debug and report it",
            )
            link.send(("failed", FailureInfo.of(failure)))
        except (OSError, EOFError):
            pass
    finally:
        link.close()
