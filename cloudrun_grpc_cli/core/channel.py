"""Dial a Target: TLS, plaintext or unix; authority; options; retry policy.

Owns the grpc.Channel and the metadata sent on every call (user headers plus
the auth header), so reflection and the call itself carry the same headers.
Knows nothing of schemas, messages or output.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import grpc.experimental

from ..errors import ConnectError, UsageError
from ..settings import ChannelSettings, Header
from . import egress, grpcadapter
from .rpcerrors import connect_error
from .secrets import SECRETS, Secrets
from .target import Target

MetadataFn = Callable[[], list[tuple[str, str]]]
RETRYABLE_DEFAULT = ("UNAVAILABLE",)
MAX_RETRIES = 4  # gRPC's own cap on maxAttempts is 5

_STATUS_NAMES = {sc.name for sc in grpc.StatusCode}


def retry_service_config(retries: int, retry_on: Sequence[str] = ()) -> str | None:
    """gRPC's service config JSON with a retry policy for every method, or None."""
    if retries <= 0:
        return None
    codes = list(dict.fromkeys([*RETRYABLE_DEFAULT, *(c.upper() for c in retry_on)]))
    policy = {
        "maxAttempts": min(retries, MAX_RETRIES) + 1,
        # gRPC jitters each backoff over [0, backoff]: these give a budget of up
        # to ~7.5 s over four retries, enough for a server restart.
        "initialBackoff": "0.5s",
        "maxBackoff": "4s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": codes,
    }
    return json.dumps({"methodConfig": [{"name": [{}], "retryPolicy": policy}]})


def validate_retry_codes(codes: Sequence[str]) -> tuple[str, ...]:
    out = []
    for c in codes:
        name = c.strip().upper()
        if name.isdigit():
            matches = [sc.name for sc in grpc.StatusCode if sc.value[0] == int(name)]
            name = matches[0] if matches else name
        if name not in _STATUS_NAMES or name == "OK":
            raise UsageError(
                f"unknown status code {c!r} for --retry-on",
                "use a gRPC status name like RESOURCE_EXHAUSTED, or its number",
            )
        out.append(name)
    return tuple(out)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {what} {str(path)!r}: {e.strerror or e}") from None


def _read_pem(path: Path, what: str, label: bytes) -> bytes:
    """A PEM file's bytes; a usage error when it holds no PEM block of that kind.

    grpc would accept anything here and fail later with "Failed to create
    security handshaker", which reads like a connection problem.
    """
    data = _read(path, what)
    if b"-----BEGIN " not in data or label not in data:
        kind = "private key" if label == b"PRIVATE KEY" else "certificate"
        raise UsageError(
            f"{what} {str(path)!r} holds no PEM {kind}",
            f"{what} takes a PEM file (-----BEGIN ...{label.decode()}-----)",
        )
    return data


def fetch_server_certificate(
    target: Target, timeout: float, proxy: egress.Proxy | None = None
) -> bytes:
    """The server's own certificate (PEM), for --insecure: trusted exactly for this call."""
    import ssl

    assert target.port is not None
    from .probe import unverified_tls

    ctx = unverified_tls()
    try:
        with (
            egress.connect(target.host, target.port, proxy, timeout) as sock,
            ctx.wrap_socket(sock, server_hostname=target.host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as e:
        reason = "connect timeout" if isinstance(e, TimeoutError) else str(e) or type(e).__name__
        why = _insecure_reason(e)
        if why == "TLS handshake failed":
            why = wrong_protocol(target, reason) or why
        raise connect_error(target.address, reason, why) from None
    if not der:
        raise ConnectError(f"cannot connect to {target.address}: the server sent no certificate")
    return ssl.DER_cert_to_PEM_cert(der).encode()


SPEAKS_PLAINTEXT = "the server speaks plaintext, not TLS"
SPEAKS_TLS = "the server speaks TLS, not plaintext"


def wrong_protocol(target: Target, details: str) -> str | None:
    """After a failed connection: whether the server speaks the other protocol
    (TLS dialed at plaintext, or the reverse), asked with one short probe."""
    from . import probe
    from .rpcerrors import connect_reason

    if target.unix_path is not None or target.port is None:
        return None
    reason = connect_reason(details) or "could not connect"
    if target.tls and reason == "TLS handshake failed":
        return SPEAKS_PLAINTEXT if probe.speaks_plaintext_h2(target.host, target.port) else None
    if not target.tls and reason in ("could not connect", "connection closed during connect"):
        return SPEAKS_TLS if probe.speaks_tls(target.host, target.port) else None
    return None


def _insecure_reason(e: Exception) -> str:
    import ssl

    if isinstance(e, TimeoutError):
        return "connect timeout"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, ssl.SSLError):
        return "TLS handshake failed"
    if isinstance(e, OSError) and e.errno is not None and "name" in str(e).lower():
        return "DNS resolution failed"
    return "could not connect"


def certificate_name(pem: bytes) -> str | None:
    """A name the certificate is valid for (first DNS SAN, else CN)."""
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = san.get_values_for_type(x509.DNSName)
        if dns:
            return str(dns[0])
        ips = san.get_values_for_type(x509.IPAddress)
        if ips:
            return str(ips[0])
    except x509.ExtensionNotFound:
        pass
    cns = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else None


def channel_proxy(
    target: Target, settings: ChannelSettings
) -> tuple[egress.Proxy | None, list[tuple[str, Any]]]:
    """The proxy the channel goes through (None: direct) and the arguments saying so."""
    if target.is_unix:
        return None, [("grpc.enable_http_proxy", 0)]
    return egress.grpc_channel_options(target.host, target.port, settings.proxy)


def channel_options(target: Target, settings: ChannelSettings) -> list[tuple[str, Any]]:
    opts: list[tuple[str, Any]] = [
        ("grpc.enable_retries", 1 if settings.retries > 0 else 0),
        ("grpc.primary_user_agent", f"crgrpc/{crgrpc_version()}"),
    ]
    opts.extend(channel_proxy(target, settings)[1])
    if settings.max_msg_size is not None:
        opts.append(("grpc.max_receive_message_length", settings.max_msg_size))
        opts.append(("grpc.max_send_message_length", max(settings.max_msg_size, 4 * 1024 * 1024)))
    else:
        opts.append(("grpc.max_receive_message_length", 4 * 1024 * 1024))
    config = retry_service_config(settings.retries, settings.retry_on)
    if config:
        opts.append(("grpc.service_config", config))
        # Reconnect soon after a server comes back (gRPC's default backoff grows
        # 1 s, 1.6 s, 2.6 s, 4.1 s…, which can outlast --connect-timeout).
        opts.append(("grpc.initial_reconnect_backoff_ms", 250))
        opts.append(("grpc.min_reconnect_backoff_ms", 250))
        opts.append(("grpc.max_reconnect_backoff_ms", 2000))
    if settings.authority:
        opts.append(("grpc.default_authority", settings.authority))
    if target.is_loopback:
        # Loopback has no bandwidth-delay product to fill: BDP probing there only
        # widens the receive window while a fast local server outpaces the reader,
        # and the window's data is memory (peak RSS grew 1.24x from 1k to 1M
        # messages; flat without it, no slower: bench/RESULTS.md). Remote targets
        # keep it, so a stream from Cloud Run is not capped at 64 KiB per round trip.
        opts.append(("grpc.http2.bdp_probe", 0))
    return opts


def crgrpc_version() -> str:
    from .. import __version__

    return __version__


def dial_parts(
    target: Target, settings: ChannelSettings, proxy: egress.Proxy | None = None,
    pinned: bytes | None = None,
) -> tuple[grpc.ChannelCredentials | None, list[tuple[str, Any]]]:
    """What every channel to target is dialed with, sync or asyncio: the TLS
    credentials (None for plaintext) and the channel options, with the rules of
    --cacert, --cert/--key, --insecure and --authority. `pinned`: the server's
    certificate for --insecure, when the caller fetched it already."""
    s = settings
    opts = channel_options(target, s)
    if not target.tls:
        return None, opts
    root = _read_pem(s.cacert, "--cacert", b"CERTIFICATE") if s.cacert else None
    key = _read_pem(s.key, "--key", b"PRIVATE KEY") if s.key else None
    chain = _read_pem(s.cert, "--cert", b"CERTIFICATE") if s.cert else None
    if (key is None) != (chain is None):
        raise UsageError("--cert and --key go together", "give both for mutual TLS")
    if s.insecure:
        root = pinned or fetch_server_certificate(target, s.connect_timeout, proxy)
        name = certificate_name(root)
        if name and not s.authority:
            opts.append(("grpc.ssl_target_name_override", name))
    elif s.authority:
        opts.append(("grpc.ssl_target_name_override", host_of(s.authority)))
    try:
        creds = grpc.ssl_channel_credentials(
            root_certificates=root, private_key=key, certificate_chain=chain
        )
    except Exception as e:  # grpc raises plain errors for bad PEM
        raise UsageError(f"cannot use the TLS files: {e}") from None
    return creds, opts


class Connection:
    """A channel to one target plus the metadata every call carries."""

    def __init__(
        self,
        target: Target,
        settings: ChannelSettings,
        auth_metadata: MetadataFn | None = None,
        secrets: Secrets = SECRETS,
    ) -> None:
        self.target = target
        self.settings = settings
        self.secrets = secrets
        self._auth_metadata = auth_metadata
        self.connected = False
        # What the last RPC (reflection's or the call's) was sent with.
        self.last_metadata: list[tuple[str, str | bytes]] = []
        self._user_headers: list[tuple[str, str | bytes]] = list(settings.headers)
        if target.run is not None:
            raise UsageError(f"{target.raw} is not resolved: nothing to dial")
        self.proxy, _ = channel_proxy(target, settings)  # None: direct
        self.channel = self._dial()

    def _dial(self) -> grpc.Channel:
        creds, opts = dial_parts(self.target, self.settings, self.proxy)
        # Unary and server-streaming calls (core/invoke.py runs both as unary-stream)
        # are driven on the caller's thread: no hand-off from gRPC's polling thread
        # per message, about 2x less CPU per streamed message (bench/RESULTS.md).
        # A grpcio sync-API option: not for the asyncio channels built on dial_parts.
        opts.append((grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1))
        if creds is None:
            return grpc.insecure_channel(self.target.address, options=opts)
        return grpc.secure_channel(self.target.address, creds, options=opts)

    def metadata(self) -> list[tuple[str, str | bytes]]:
        """Headers for one call: the user's, then the auth header (fetched per call).

        Asked for right before every RPC (reflection's and the call's), so with
        --retries it first waits for a connection that went away to come back.
        """
        self.ensure_ready()
        md: list[tuple[str, str | bytes]] = list(self._user_headers)
        if self._auth_metadata is not None:
            md.extend(self._auth_metadata())
        self.secrets.remember(md)
        self.last_metadata = md
        return md

    def wait_connected(self, timeout: float | None = None) -> None:
        """Block until READY; fail fast (exit 4) on the first failure unless retrying."""
        if self.connected:
            return
        timeout = self.settings.connect_timeout if timeout is None else timeout
        patient = self.settings.retries > 0
        last = _wait_for_state(self.channel, timeout, stop_on_failure=not patient)
        if last == grpc.ChannelConnectivity.READY:
            self.connected = True
            return
        if last == grpc.ChannelConnectivity.TRANSIENT_FAILURE:
            details = self._probe_failure()
            if self.proxy is not None and _proxy_failed(details):
                raise egress.proxy_refused(self.proxy, self.target.address, details)
            # The probe of the other protocol dials directly: not through a proxy.
            other = wrong_protocol(self.target, details) if self.proxy is None else None
            raise self._through_proxy(connect_error(self.target.address, details, other))
        raise self._through_proxy(
            connect_error(
                self.target.address, f"connect timeout after {timeout:g}s", "connect timeout"
            )
        )

    def _through_proxy(self, err: ConnectError) -> ConnectError:
        """err, its message saying which proxy the connection went through."""
        if self.proxy is not None:
            err.message = f"{err.message} (through the proxy {self.proxy.described})"
        return err

    def ensure_ready(self) -> None:
        """With --retries, wait (up to --connect-timeout, then exit 4) for a channel
        that was READY and is not any more, before the next RPC: a server restarting
        between calls is waited for instead of failing the RPC fast."""
        if self.settings.retries <= 0 or not self.connected:
            return
        state = grpcadapter.state(self.channel)
        if state is None or state == grpcadapter.READY:
            return
        self.connected = False
        self.wait_connected()

    def _probe_failure(self) -> str:
        """gRPC's own words for why the channel is failing (a fail-fast probe call)."""
        probe = self.channel.unary_unary("/crgrpc.Probe/Probe", None, None)
        try:
            probe(b"", timeout=5, wait_for_ready=False)
        except grpc.RpcError as e:
            return str(e.details() or "")  # type: ignore[attr-defined]
        return "could not connect"

    def close(self) -> None:
        self.channel.close()


def _wait_for_state(
    channel: grpc.Channel, timeout: float, *, stop_on_failure: bool
) -> grpc.ChannelConnectivity | None:
    """Watch the channel's state in this thread until READY (or a failure).

    Through grpcadapter (free), or grpc's public subscribe() should grpc's
    internals change.
    """
    state = grpcadapter.state(channel)
    if state is None:
        return _wait_by_subscribe(channel, timeout, stop_on_failure=stop_on_failure)
    ready, failing = grpcadapter.READY, grpcadapter.TRANSIENT_FAILURE
    deadline = time.monotonic() + timeout
    while True:
        if state == ready or (state == failing and stop_on_failure):
            break
        left = deadline - time.monotonic()
        if left <= 0:
            break
        # Short slices keep Ctrl-C responsive.
        state = grpcadapter.watch(channel, state, min(left, 0.25))
    if state == ready:
        return grpc.ChannelConnectivity.READY
    if state == failing:
        return grpc.ChannelConnectivity.TRANSIENT_FAILURE
    return None


def _wait_by_subscribe(
    channel: grpc.Channel, timeout: float, *, stop_on_failure: bool
) -> grpc.ChannelConnectivity | None:
    done = threading.Event()
    seen: list[grpc.ChannelConnectivity] = []

    def watch(s: grpc.ChannelConnectivity) -> None:
        seen.append(s)
        if s == grpc.ChannelConnectivity.READY or (
            s == grpc.ChannelConnectivity.TRANSIENT_FAILURE and stop_on_failure
        ):
            done.set()

    channel.subscribe(watch, try_to_connect=True)
    try:
        done.wait(timeout)
    finally:
        channel.unsubscribe(watch)
    last = seen[-1] if seen else None
    if last in (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE):
        return last
    return None


def _proxy_failed(details: str) -> bool:
    """gRPC's words for a proxy that refused the tunnel or could not be reached."""
    low = details.lower()
    return "http proxy returned response code" in low or any(
        m in low for m in ("connection refused", "dns resolution failed", "name resolution")
    )


def host_of(authority: str) -> str:
    from .target import strip_port

    return strip_port(authority).strip("[]")


def parse_header(text: str) -> Header:
    """`name: value` (-H). `-bin` names take base64 and are sent as bytes."""
    import base64
    import binascii

    name, sep, value = text.partition(":")
    name = name.strip().lower()
    if not sep or not name:
        raise UsageError(f"invalid header {text!r}", "write -H 'name: value'")
    if not all(c.isalnum() or c in "-_." for c in name) or name.startswith(":"):
        raise UsageError(
            f"invalid header name {name!r}",
            "header names are letters, digits, '-', '_' and '.'",
        )
    if name.startswith("grpc-"):
        raise UsageError(f"header {name!r} is reserved by gRPC")
    value = value.strip()
    if name.endswith("-bin"):
        try:
            padded = value + "=" * (-len(value) % 4)
            return name, base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            raise UsageError(
                f"invalid base64 in binary header {name!r}",
                "'-bin' header values are base64 (standard alphabet)",
            ) from None
    if any(ord(c) < 0x20 or ord(c) > 0x7E for c in value):
        raise UsageError(
            f"invalid value for header {name!r}: only printable ASCII is allowed",
            "send binary values in a '-bin' header as base64",
        )
    return name, value
