"""run:// → the service's URL, which becomes the address and the audience.

Order: locate the service (project and region), find the credentials' access
provider (files only: no minting yet), then the resolution cache (per
identity, Admin API and service; 5 minutes): a hit makes no request and
mints nothing. A miss asks services.get with an access token of those
credentials and stores the URLs. The resolved Target keeps the run:// text
as its `raw` (hints and messages name what the user typed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NamedTuple

from ...settings import Settings
from ..target import RunRef, Target, parse_target
from . import cache
from .api import AdminApi, api_base
from .errors import RunApiUnreachable, RunNoCredentials
from .location import Location, locate
from .model import RunService

if TYPE_CHECKING:
    from ..auth.sources import AccessProvider

Policy = Literal["mint", "cached"]


class Resolution(NamedTuple):
    target: Target  # the service's uri as a dialable target; raw is the run:// text
    service: RunService
    location: Location
    from_cache: bool
    api: AdminApi | None  # None when answered from the cache

    @property
    def audience(self) -> str:
        assert self.service.uri is not None
        return self.service.uri.rstrip("/")


def access_for(settings: Settings, what: str) -> AccessProvider:
    """The access provider of the call's credentials; RunNoCredentials when there is none."""
    from ..auth.sources import access_provider

    provider, tried = access_provider(settings.auth)
    if provider is None:
        err = RunNoCredentials(
            f"{what}: the Cloud Run Admin API needs Google credentials; none found "
            f"(tried: {', '.join(tried)})"
        )
        err.about("credentials", service=what)
        raise err
    return provider


def admin_api(settings: Settings, access: AccessProvider) -> AdminApi:
    return AdminApi(api_base(settings.cloudrun.run_api), access, proxy=settings.auth.proxy)


def lookup(
    ref: RunRef,
    settings: Settings,
    *,
    policy: Policy = "mint",
    fresh: bool = False,
    raw: str | None = None,
) -> Resolution | None:
    """The service ref names, from the cache or the Admin API.

    policy "cached" (completion) never mints nor asks: None on a miss or without
    credentials. fresh (doctor) skips reading the cache (and refreshes it).
    """
    loc = locate(ref, settings.cloudrun)
    base = api_base(settings.cloudrun.run_api)
    try:
        access = access_for(settings, raw or ref.text)
    except RunNoCredentials:
        if policy == "cached":
            return None
        raise
    key = cache.cache_key(access.identity, base, loc.name)
    use_cache = settings.cloudrun.resolve_cache
    if use_cache and not fresh:
        hit = cache.load(key, root=settings.cache_dir)
        if hit is not None:
            service = RunService.from_json(hit)
            return Resolution(_target(service, raw or ref.text), service, loc, True, None)
    if policy == "cached":
        return None
    api = AdminApi(base, access, proxy=settings.auth.proxy)
    service = RunService.from_json(api.get_service(loc))
    if not service.uri:
        err = RunApiUnreachable(
            f"the Cloud Run service {loc.service} (project {loc.project}, region {loc.region}) "
            "has no URL yet",
            reason="no URL",
        )
        err.about("no-url", service=loc.service, project=loc.project, region=loc.region, api=base)
        raise err
    if use_cache:
        cache.store(key, service.cached(), root=settings.cache_dir)
    return Resolution(_target(service, raw or ref.text), service, loc, False, api)


def _target(service: RunService, raw: str) -> Target:
    assert service.uri is not None
    return parse_target(service.uri)._replace(raw=raw)


def resolve(
    target: Target, settings: Settings, *, policy: Policy = "mint", fresh: bool = False
) -> tuple[Target, Settings, Resolution | None]:
    """A run:// target resolved (and the settings with its audience), else as given.

    With policy "cached", an unresolvable run:// target comes back as given with None.
    """
    if target.run is None:
        return target, settings, None
    res = lookup(target.run, settings, policy=policy, fresh=fresh, raw=target.raw)
    if res is None:
        return target, settings, None
    return res.target, with_audience(settings, res), res


def with_audience(settings: Settings, res: Resolution) -> Settings:
    """--audience, else the service's uri."""
    auth = settings.auth
    if auth.audience:
        return settings
    return settings._replace(auth=auth._replace(audience=res.audience))
