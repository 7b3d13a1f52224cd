"""A deterministic run.app URL → its service: https://SERVICE-PROJECTNUMBER.REGION.run.app.

The older https://SERVICE-HASH-REGIONCODE.a.run.app URLs do not name their
project or region, so they cannot be resolved without listing services.
"""

from __future__ import annotations

import re

from ..target import RunRef

_RUN_APP = re.compile(
    r"^(?P<service>[a-z](?:[a-z0-9-]*[a-z0-9])?)-(?P<number>[0-9]{6,20})"
    r"\.(?P<region>[a-z]+(?:-[a-z]+)*[0-9]+)\.run\.app\.?$"
)


def run_app_service(host: str) -> RunRef | None:
    """The service a deterministic run.app host names (project = its number), or None."""
    m = _RUN_APP.match(host.lower())
    if m is None:
        return None
    return RunRef(service=m["service"], region=m["region"], project=m["number"])
