"""The Cloud Run Admin API v2 Service resource: only the fields crgrpc reads.

Parsed leniently (a field of the wrong type reads as absent): the resource
comes from a server. `cached()` is what the resolution cache stores: the
name and the URLs and audiences, never the template (its environment
variables may hold secrets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

READY = "CONDITION_SUCCEEDED"
INGRESS_ALL = "INGRESS_TRAFFIC_ALL"
DEFAULT_TIMEOUT = 300.0  # Cloud Run's request timeout when the revision sets none


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str) and v)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_duration(text: str | None) -> float | None:
    """A protobuf Duration's JSON ("300s", "1.5s") in seconds, or None."""
    if not text or not text.endswith("s"):
        return None
    try:
        return float(text[:-1])
    except ValueError:
        return None


@dataclass(frozen=True)
class RunService:
    name: str
    uri: str | None
    urls: tuple[str, ...] = ()
    custom_audiences: tuple[str, ...] = ()
    ingress: str | None = None
    invoker_iam_disabled: bool = False
    iap_enabled: bool = False
    latest_ready: str | None = None
    latest_created: str | None = None
    condition_state: str | None = None
    condition_message: str | None = None
    timeout: float | None = None  # the template's request timeout, seconds
    port_names: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> RunService:
        d = _dict(data)
        template = _dict(d.get("template"))
        containers = template.get("containers")
        ports: list[str] = []
        for c in containers if isinstance(containers, list) else []:
            for p in _dict(c).get("ports") or []:
                name = _str(_dict(p).get("name"))
                if name:
                    ports.append(name)
        cond = _dict(d.get("terminalCondition"))
        return cls(
            name=_str(d.get("name")) or "",
            uri=_str(d.get("uri")),
            urls=_strs(d.get("urls")),
            custom_audiences=_strs(d.get("customAudiences")),
            ingress=_str(d.get("ingress")),
            invoker_iam_disabled=d.get("invokerIamDisabled") is True,
            iap_enabled=d.get("iapEnabled") is True,
            latest_ready=_str(d.get("latestReadyRevision")),
            latest_created=_str(d.get("latestCreatedRevision")),
            condition_state=_str(cond.get("state")),
            condition_message=_str(cond.get("message")),
            timeout=parse_duration(_str(template.get("timeout"))),
            port_names=tuple(ports),
            raw=d,
        )

    def cached(self) -> dict[str, Any]:
        """What the resolution cache keeps: no template, no environment, no secrets."""
        out: dict[str, Any] = {"name": self.name, "uri": self.uri}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.custom_audiences:
            out["customAudiences"] = list(self.custom_audiences)
        return out

    @property
    def accepted_audiences(self) -> tuple[str, ...]:
        """The audiences Cloud Run accepts in an ID token for this service."""
        seen: dict[str, None] = {}
        for aud in (self.uri, *self.urls, *self.custom_audiences):
            if aud:
                seen.setdefault(aud.rstrip("/"), None)
        return tuple(seen)

    @property
    def ready(self) -> bool:
        """The latest revision is ready and serves."""
        return (
            self.condition_state == READY
            and self.latest_ready is not None
            and self.latest_ready == (self.latest_created or self.latest_ready)
        )

    @property
    def latest_revision(self) -> str | None:
        rev = self.latest_created or self.latest_ready
        return rev.rsplit("/", 1)[-1] if rev else None

    @property
    def http2(self) -> bool:
        """End-to-end HTTP/2: a container port named h2c."""
        return "h2c" in self.port_names

    @property
    def request_timeout(self) -> float:
        return self.timeout if self.timeout is not None else DEFAULT_TIMEOUT
