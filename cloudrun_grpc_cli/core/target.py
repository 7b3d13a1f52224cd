"""Parse a TARGET into an address, a transport and a default audience.

Owns the TARGET grammar (README: TARGET); knows nothing of config files (named
targets are resolved before parsing) or of channels.
"""

import ipaddress
import re
from typing import NamedTuple

from ..errors import UsageError

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
_HOST_RE = re.compile(rf"^(?:{_LABEL}\.)*{_LABEL}\.?$")  # DNS labels; no empty ones
_METHOD_PATH_RE = re.compile(r"^[A-Za-z_][\w.]*/[A-Za-z_]\w*$")
_HINT = (
    "TARGET is host, host:port, https://host[:port], http://host[:port], [::1]:port, "
    "unix:///path or run://[[PROJECT/]REGION/]SERVICE"
)
_RUN_HINT = "write run://SERVICE, run://REGION/SERVICE or run://PROJECT/REGION/SERVICE"
# Cloud Run's own rules: a service is a DNS label of lowercase letters, digits and
# hyphens starting with a letter; a region is like us-central1; a project is a project
# ID (6-30 characters; "example.com:name" for domain-scoped ones) or a project number.
_RUN_SERVICE_RE = r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$"
_RUN_REGION_RE = r"^[a-z]+(?:-[a-z]+)*[0-9]+$"
_RUN_PROJECT_RE = r"^(?:[a-z][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[0-9]{1,20}$"


class RunRef(NamedTuple):
    """A Cloud Run service named by a `run://` target; project and region may be missing."""

    service: str
    region: str | None = None
    project: str | None = None

    @property
    def text(self) -> str:
        parts = [p for p in (self.project, self.region) if p]
        return "run://" + "/".join([*parts, self.service])


class Target(NamedTuple):
    """Where to dial. `host` is bare (no brackets) and empty for unix sockets."""

    raw: str
    host: str
    port: int | None
    tls: bool
    unix_path: str | None = None
    method: str | None = None  # buf curl's https://host/pkg.Service/Method form
    run: RunRef | None = None  # a run:// target, not dialable before core.cloudrun resolves it

    @property
    def address(self) -> str:
        """The address grpc dials (a run:// target's own text until it is resolved)."""
        if self.run is not None:
            return self.run.text
        if self.unix_path is not None:
            return f"unix://{self.unix_path}" if self.unix_path.startswith("/") else f"unix:{self.unix_path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def is_unix(self) -> bool:
        return self.unix_path is not None

    @property
    def is_loopback(self) -> bool:
        """True for unix sockets, localhost and loopback addresses."""
        if self.unix_path is not None:
            return True
        if self.run is not None:
            return False
        return is_loopback_host(self.host)

    def default_audience(self, authority: str | None = None) -> str | None:
        """`https://host` of the authority or the target: what Cloud Run expects."""
        if authority:
            return "https://" + strip_port(authority)
        if self.unix_path is not None or self.run is not None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}"


def is_loopback_host(host: str) -> bool:
    h = host.strip("[]").lower()
    if h == "localhost" or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def strip_port(authority: str) -> str:
    """`host:port` → `host`; `[::1]:443` → `[::1]`."""
    a = authority.strip()
    if a.startswith("["):
        end = a.find("]")
        return a[: end + 1] if end > 0 else a
    if a.count(":") == 1:
        return a.split(":", 1)[0]
    return a


def _parse_port(text: str, raw: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise UsageError(f"invalid port {text!r} in target {raw!r}", _HINT)
    port = int(text)
    if not 1 <= port <= 65535:
        raise UsageError(f"port {port} out of range in target {raw!r} (1-65535)", _HINT)
    return port


def _split_host_port(hostport: str, raw: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise UsageError(f"unclosed '[' in target {raw!r}", _HINT)
        host = hostport[1:end]
        rest = hostport[end + 1 :]
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise UsageError(f"invalid IPv6 address {host!r} in target {raw!r}", _HINT) from None
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise UsageError(f"unexpected {rest!r} after ']' in target {raw!r}", _HINT)
        return host, _parse_port(rest[1:], raw)
    if hostport.count(":") > 1:
        raise UsageError(
            f"invalid target {raw!r}: an IPv6 address needs brackets", "write [::1]:8080"
        )
    host, sep, port_text = hostport.partition(":")
    if not host or len(host) > 253 or not _HOST_RE.match(host):
        raise UsageError(f"invalid host {host!r} in target {raw!r}", _HINT)
    return host, (_parse_port(port_text, raw) if sep else None)


_RUN_PARTS = {
    "service": (
        _RUN_SERVICE_RE,
        "Cloud Run service name",
        "a service name is lowercase letters, digits and hyphens, starting with a letter",
    ),
    "region": (_RUN_REGION_RE, "Cloud Run region", "a region is like us-central1 or europe-west1"),
    "project": (
        _RUN_PROJECT_RE,
        "project",
        "a project is a project ID (like my-project-123) or a project number",
    ),
}


def check_run_part(kind: str, value: str, where: str) -> str:
    """value as a Cloud Run service, region or project; UsageError naming where otherwise."""
    pattern, what, hint = _RUN_PARTS[kind]
    if not re.match(pattern, value):  # compiled on first use (re's cache): run:// only
        raise UsageError(f"invalid {what} {value!r} {where}", hint)
    return value


def parse_run_target(raw: str, rest: str, *, plaintext: bool = False) -> Target:
    """run://SERVICE, run://REGION/SERVICE, run://PROJECT/REGION/SERVICE."""
    if plaintext:
        raise UsageError(
            f"--plaintext conflicts with the run:// target {raw!r}: Cloud Run serves TLS",
            "drop --plaintext",
        )
    parts = rest.split("/")
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise UsageError(f"invalid target {raw!r}", _RUN_HINT)
    *head, service = parts
    project: str | None = head[0] if len(head) == 2 else None
    region: str | None = head[-1] if head else None
    where = f"in target {raw!r}"
    check_run_part("service", service, where)
    if region is not None:
        check_run_part("region", region, where)
    if project is not None:
        check_run_part("project", project, where)
    return Target(
        raw=raw, host="", port=None, tls=True, run=RunRef(service, region, project)
    )


def parse_target(raw: str, *, plaintext: bool = False) -> Target:
    """Parse TARGET. `plaintext` is --plaintext, which applies to scheme-less targets."""
    text = raw.strip()
    if not text:
        raise UsageError("empty target", _HINT)
    if any(c.isspace() for c in text):
        raise UsageError(f"invalid target {raw!r}: it contains white space", _HINT)
    if text.startswith("unix:"):
        path = text[len("unix:") :]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise UsageError(f"invalid target {raw!r}: no socket path", "write unix:///path/to.sock")
        return Target(raw=raw, host="", port=None, tls=False, unix_path=path)

    scheme = None
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", text)
    if m:
        scheme = m.group(1).lower()
        text = m.group(2)
        if scheme == "run":
            return parse_run_target(raw, text, plaintext=plaintext)
        if scheme not in ("http", "https"):
            raise UsageError(f"unsupported scheme {scheme!r} in target {raw!r}", _HINT)
        if scheme == "https" and plaintext:
            raise UsageError(
                f"--plaintext conflicts with the https:// target {raw!r}",
                "use http://host:port, or drop --plaintext",
            )
    hostport, slash, path = text.partition("/")
    method = None
    if slash:
        if scheme is None:
            raise UsageError(
                f"invalid target {raw!r}: a path needs https:// or http://",
                "write https://host/pkg.Service/Method, or give the method separately",
            )
        path = path.strip("/")
        if path:
            if not _METHOD_PATH_RE.match(path):
                raise UsageError(
                    f"invalid target {raw!r}: the path must be /pkg.Service/Method", _HINT
                )
            method = path
    if not hostport:
        raise UsageError(f"invalid target {raw!r}: no host", _HINT)
    host, port = _split_host_port(hostport, raw)
    tls = scheme == "https" if scheme else not plaintext
    if port is None:
        if scheme is None and not plaintext:
            port = 443
        else:
            port = 443 if tls else 80
    return Target(raw=raw, host=host, port=port, tls=tls, method=method)
