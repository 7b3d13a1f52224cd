"""Egress through an HTTP CONNECT proxy: one decision for gRPC and every HTTP request.

Owns which proxy a connection goes through, for the gRPC channel (gRPC's own
CONNECT support, given the decision as the `grpc.http_proxy` channel
argument, or turned off with `grpc.enable_http_proxy` = 0) and for every HTTP
request crgrpc makes (token endpoint, IAM Credentials, STS, the Cloud Run
Admin API, certs: an `EgressSession`, a requests Session whose proxies are
this decision). The metadata server is always reached directly.

The proxy is `--proxy URL`, else the usual variables: for gRPC `grpc_proxy`,
`https_proxy`, `HTTPS_PROXY`, `http_proxy` (gRPC's own order, plus the upper
case spelling, which gRPC alone ignores); for HTTP requests the variable of
the URL's scheme, as requests and curl read them (`https_proxy`/`HTTPS_PROXY`,
`http_proxy`/`HTTP_PROXY`). `no_proxy`/`NO_PROXY` (and `no_grpc_proxy` for
gRPC) list hosts reached directly: names (a suffix match: `example.com`
covers `api.example.com`), `host:port`, IP addresses and CIDR ranges, `*`.

A proxy that refuses (an HTTP error to CONNECT, 407 to a forwarded request,
a refused connection) is a ConnectError (exit 4) naming the proxy without
its password; the password is registered with the scrub registry.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import os
import urllib.parse
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import ConnectError, UsageError
from .secrets import SECRETS

if TYPE_CHECKING:
    import requests

GRPC_VARS = ("grpc_proxy", "https_proxy", "HTTPS_PROXY", "http_proxy")
HTTPS_VARS = ("https_proxy", "HTTPS_PROXY")
HTTP_VARS = ("http_proxy", "HTTP_PROXY")
_PROXY_HINT = "a proxy is http://[USER:PASSWORD@]HOST:PORT (an HTTP CONNECT proxy)"


class Proxy(NamedTuple):
    """A proxy in use: its URL (credentials included), how it is shown, where it came from."""

    url: str
    shown: str  # without the password
    origin: str  # "--proxy" or the variable's name
    host: str
    port: int

    @property
    def described(self) -> str:
        return self.shown if self.origin == "--proxy" else f"{self.shown} (from {self.origin})"


def parse_proxy(text: str, origin: str = "--proxy") -> Proxy:
    """A proxy URL checked and normalised (http://, a host, a port: 80 when none)."""
    raw = text.strip()
    if "://" not in raw:
        raw = "http://" + raw  # curl's and gRPC's reading of host:port
    parts = urllib.parse.urlsplit(raw)
    what = origin if origin == "--proxy" else f"{origin} (a proxy variable)"
    if parts.scheme.lower() != "http":
        raise UsageError(
            f"{what}: unsupported proxy scheme {parts.scheme!r}",
            _PROXY_HINT + "; crgrpc speaks plain HTTP to the proxy, TLS through its tunnel",
        )
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or (parts.path not in ("", "/")) or parts.query or parts.fragment:
        raise UsageError(f"{what}: invalid proxy URL {shown_url(raw)!r}", _PROXY_HINT)
    port = port or 80
    user = parts.username
    password = parts.password
    netloc_host = f"[{host}]" if ":" in host else host
    auth = ""
    if user is not None:
        auth = user + (f":{password}" if password is not None else "") + "@"
    if password:
        from .auth import scrub

        creds = f"{urllib.parse.unquote(user or '')}:{urllib.parse.unquote(password)}"
        for secret in (urllib.parse.unquote(password), password, base64.b64encode(creds.encode()).decode()):
            SECRETS.add(secret)
            scrub.remember(secret)
    url = f"http://{auth}{netloc_host}:{port}"
    shown = f"http://{user + '@' if user else ''}{netloc_host}:{port}"
    return Proxy(url=url, shown=shown, origin=origin, host=host, port=port)


def shown_url(url: str) -> str:
    """url without the password of its userinfo (for messages and `config show`)."""
    try:
        parts = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    rebuilt = parts._replace(netloc=f"{user}:<redacted>@{netloc}")
    return urllib.parse.urlunsplit(rebuilt) if "://" in url else rebuilt.geturl()[7:]


def _env(names: tuple[str, ...]) -> tuple[str, str] | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return name, value
    return None


def no_proxy_matches(host: str, port: int | None, names: tuple[str, ...]) -> bool:
    """Whether host (or host:port) is in the first set no_proxy-style variable of names."""
    found = _env(names)
    if found is None:
        return False
    host = host.strip("[]").lower().rstrip(".")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for entry in found[1].split(","):
        e = entry.strip().lower()
        if not e:
            continue
        if e == "*":
            return True
        e_port: int | None = None
        if e.count(":") == 1 and not e.startswith("["):
            name, _, port_text = e.partition(":")
            if port_text.isdigit():
                e, e_port = name, int(port_text)
        elif e.startswith("[") and "]:" in e:
            name, _, port_text = e[1:].partition("]:")
            if port_text.isdigit():
                e, e_port = name, int(port_text)
        e = e.strip("[]")
        if e_port is not None and port != e_port:
            continue
        if ip is not None:
            try:
                if ip in ipaddress.ip_network(e, strict=False):
                    return True
            except ValueError:
                pass
            continue
        e = e.removeprefix("*").lstrip(".")
        if e and (host == e or host.endswith("." + e)):
            return True
    return False


def grpc_proxy(host: str, port: int | None, explicit: str | None) -> Proxy | None:
    """The proxy a gRPC connection to host:port goes through, or None (direct)."""
    if no_proxy_matches(host, port, ("no_grpc_proxy", "no_proxy", "NO_PROXY")):
        return None
    if explicit:
        return parse_proxy(explicit)
    found = _env(GRPC_VARS)
    return parse_proxy(found[1], found[0]) if found else None


_METADATA_NAMES = ("metadata.google.internal", "metadata", "169.254.169.254", "[fd00:ec2::254]")


def is_metadata_server(host: str, port: int | None) -> bool:
    """The metadata server (its usual names, GCE_METADATA_HOST, GCE_METADATA_IP): link-local,
    never reachable through a proxy."""
    netloc = f"{host}:{port}" if port not in (None, 80) else host
    names = set(_METADATA_NAMES)
    for var in ("GCE_METADATA_HOST", "GCE_METADATA_IP", "GCE_METADATA_ROOT"):
        value = os.environ.get(var, "").strip().lower()
        if value:
            names.add(value.removeprefix("http://").split("/", 1)[0])
    return host.lower() in _METADATA_NAMES or netloc.lower() in names


def http_proxy(url: str, explicit: str | None) -> Proxy | None:
    """The proxy an HTTP request to url goes through, or None (direct)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = None
    if not host or is_metadata_server(host, port):
        return None
    if no_proxy_matches(host, port, ("no_proxy", "NO_PROXY")):
        return None
    if explicit:
        return parse_proxy(explicit)
    found = _env(HTTPS_VARS if parts.scheme == "https" else HTTP_VARS)
    return parse_proxy(found[1], found[0]) if found else None


def grpc_channel_options(
    host: str, port: int | None, explicit: str | None
) -> tuple[Proxy | None, list[tuple[str, Any]]]:
    """The proxy and the channel arguments that make gRPC use exactly it (or none)."""
    proxy = grpc_proxy(host, port, explicit)
    if proxy is None:
        return None, [("grpc.enable_http_proxy", 0)]
    return proxy, [("grpc.http_proxy", proxy.url)]


# --- errors --------------------------------------------------------------------------------


_STATUS_WORDS = {
    "400": "Bad Request",
    "403": "Forbidden",
    "407": "Proxy Authentication Required",
    "502": "Bad Gateway",
    "503": "Service Unavailable",
    "504": "Gateway Timeout",
}


def _refusal_reason(text: str) -> str:
    """A short reason from gRPC's or requests' words for a proxy failure."""
    import re

    low = text.lower()
    m = re.search(r"(?:response code|tunnel connection failed:|status)\s*(\d{3})\b", low)
    if m:
        code = m.group(1)
        return f"HTTP {code} {_STATUS_WORDS.get(code, '')}".rstrip()
    if "refused" in low:
        return "connection refused"
    if "timed out" in low or "timeout" in low:
        return "connect timeout"
    if "name or service not known" in low or "resolve" in low or "nodename" in low:
        return "DNS resolution failed"
    return "could not connect"


def proxy_refused(proxy: Proxy, destination: str, details: str) -> ConnectError:
    """The error of a proxy that would not carry a connection to destination (exit 4)."""
    reason = _refusal_reason(details)
    if reason in ("connection refused", "connect timeout", "DNS resolution failed"):
        what = f"cannot reach the proxy {proxy.described}: {reason}"
    else:
        what = f"the proxy {proxy.described} refused the connection to {destination}: {reason}"
    return ConnectError(what, reason=f"proxy: {reason}", details=SECRETS.scrub(details))


def ca_bundle() -> str | None:
    """requests' own CA bundle variables (read here: the sessions do not trust the
    environment for proxies, which this module decides)."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def route(url: str, explicit: str | None) -> tuple[Proxy | None, dict[str, str]]:
    """The proxy of an HTTP request to url, and requests' `proxies` saying exactly that."""
    proxy = http_proxy(url, explicit)
    return proxy, ({"http": proxy.url, "https": proxy.url} if proxy else {})


def _destination(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    return f"{host}:{port}"


def refusal(proxy: Proxy | None, url: str, exc: BaseException) -> ConnectError | None:
    """requests' error for a request through proxy, as the proxy's refusal (or None: the
    error is not the proxy's)."""
    import requests

    if proxy is None:
        return None
    if isinstance(exc, requests.exceptions.ProxyError) or (
        isinstance(exc, requests.exceptions.ConnectionError)
        and not isinstance(exc, requests.exceptions.Timeout)
    ):
        return proxy_refused(proxy, _destination(url), str(exc))
    return None


def check_answer(proxy: Proxy | None, url: str, status: int) -> None:
    """A 407 to a forwarded request is the proxy's own refusal."""
    if proxy is not None and status == 407:
        raise proxy_refused(proxy, _destination(url), "response code 407")


@functools.cache
def _session_class() -> type[requests.Session]:
    import requests

    class EgressSession(requests.Session):
        explicit: str | None = None

        def __init__(self) -> None:
            super().__init__()
            self.trust_env = False  # proxies are decided here; netrc is never read
            bundle = ca_bundle()
            if bundle:
                self.verify = bundle

        def request(  # type: ignore[override]
            self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
        ) -> requests.Response:
            text = url.decode() if isinstance(url, bytes) else url
            proxy, kwargs["proxies"] = route(text, self.explicit)
            try:
                response = super().request(method, url, *args, **kwargs)
            except requests.exceptions.RequestException as exc:
                refused = refusal(proxy, text, exc)
                if refused is not None:
                    raise refused from None
                raise
            check_answer(proxy, text, response.status_code)
            return response

    return EgressSession


def session(explicit: str | None = None) -> requests.Session:
    """A requests Session whose every request goes through this module's proxy decision;
    a proxy that refuses raises ConnectError (exit 4)."""
    s = _session_class()()
    s.explicit = explicit  # type: ignore[attr-defined]
    return s


# --- a tunnel of our own (doctor's connect check, --insecure's certificate fetch) ----------


def connect(host: str, port: int, proxy: Proxy | None, timeout: float) -> Any:
    """A TCP socket to host:port, directly or through proxy's CONNECT tunnel.

    OSError for a connection that fails; ConnectError (exit 4) when the proxy refuses.
    """
    import socket

    if proxy is None:
        return socket.create_connection((host, port), timeout=timeout)
    destination = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        sock = socket.create_connection((proxy.host, proxy.port), timeout=timeout)
    except OSError as exc:
        raise proxy_refused(proxy, destination, str(exc) or type(exc).__name__) from None
    parts = urllib.parse.urlsplit(proxy.url)
    lines = [f"CONNECT {destination} HTTP/1.1", f"Host: {destination}"]
    if parts.username is not None:
        creds = (
            f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        )
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(creds.encode()).decode())
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer and len(answer) <= 65536:
            # Peek, then take no more than the answer: what follows it in the same
            # segment is the server's (an HTTP/2 server speaks first) and stays unread.
            chunk = sock.recv(4096, socket.MSG_PEEK)
            if not chunk:
                break
            end = (answer[-3:] + chunk).find(b"\r\n\r\n")
            take = len(chunk) if end < 0 else end + 4 - len(answer[-3:])
            answer += sock.recv(take)
    except OSError as exc:
        sock.close()
        raise proxy_refused(proxy, destination, str(exc) or type(exc).__name__) from None
    status = answer.split(b"\r\n", 1)[0].split(b" ")
    code = status[1].decode("latin-1") if len(status) > 1 else ""
    if code != "200":
        sock.close()
        raise proxy_refused(proxy, destination, f"response code {code or '(none)'}")
    return sock
