"""The project and region of a run:// target, and where each came from.

In order: the target itself (run://PROJECT/REGION/SERVICE), --project /
--region (with their variables and config keys: settings), then gcloud's own
settings: the variables CLOUDSDK_CORE_PROJECT and CLOUDSDK_RUN_REGION, then
the active gcloud configuration under CLOUDSDK_CONFIG (default
~/.config/gcloud): CLOUDSDK_ACTIVE_CONFIG_NAME or the file `active_config`
names `configurations/config_NAME`, an INI file with `[core] project` and
`[run] region`. A missing one is exit 2 naming both ways to give it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NamedTuple

from ...settings import CloudRunSettings
from ..target import RunRef, check_run_part
from .errors import RunLocationMissing


class Location(NamedTuple):
    """A Cloud Run service, fully named, and where its project and region came from."""

    project: str
    region: str
    service: str
    project_from: str = "the target"
    region_from: str = "the target"

    @property
    def name(self) -> str:
        return f"projects/{self.project}/locations/{self.region}/services/{self.service}"

    @property
    def text(self) -> str:
        return f"run://{self.project}/{self.region}/{self.service}"


def gcloud_config_dir() -> Path:
    """$CLOUDSDK_CONFIG, else ~/.config/gcloud (%APPDATA%\\gcloud on Windows)."""
    config = os.environ.get("CLOUDSDK_CONFIG", "").strip()
    if config:
        return Path(config).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("APPDATA") or os.environ.get("SYSTEMDRIVE", "C:") + "\\"
        return Path(base) / "gcloud"
    return Path.home() / ".config" / "gcloud"


def active_configuration() -> str:
    """The name of gcloud's active configuration ("default" when none is named)."""
    name = os.environ.get("CLOUDSDK_ACTIVE_CONFIG_NAME", "").strip()
    if name:
        return name
    try:
        text = (gcloud_config_dir() / "active_config").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        text = ""
    return text or "default"


def gcloud_property(section: str, key: str) -> tuple[str, str] | None:
    """(value, where) of a property of the active gcloud configuration, or None."""
    import configparser  # only when the target and flags leave something to find

    name = active_configuration()
    path = gcloud_config_dir() / "configurations" / f"config_{name}"
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    except (OSError, UnicodeDecodeError, configparser.Error):
        return None
    value = parser.get(section, key, fallback="").strip()
    if not value:
        return None
    return value, f"gcloud configuration {name!r} ({path})"


def _from_gcloud(variable: str, section: str, key: str) -> tuple[str, str] | None:
    value = os.environ.get(variable, "").strip()
    if value:
        return value, variable
    return gcloud_property(section, key)


def locate(ref: RunRef, settings: CloudRunSettings) -> Location:
    """The full name of ref's service; RunLocationMissing (exit 2) when project or region
    cannot be found anywhere."""
    project: tuple[str, str] | None = (ref.project, "the target") if ref.project else None
    if project is None and settings.project:
        project = check_run_part("project", settings.project.strip(), "(--project)"), "--project"
    if project is None:
        project = _from_gcloud("CLOUDSDK_CORE_PROJECT", "core", "project")
    region: tuple[str, str] | None = (ref.region, "the target") if ref.region else None
    if region is None and settings.region:
        region = check_run_part("region", settings.region.strip(), "(--region)"), "--region"
    if region is None:
        region = _from_gcloud("CLOUDSDK_RUN_REGION", "run", "region")
    missing = tuple(
        what for what, found in (("project", project), ("region", region)) if found is None
    )
    if missing:
        err = RunLocationMissing(
            f"{ref.text}: no {' and no '.join(missing)} for the Cloud Run service {ref.service}"
        )
        err.about(
            "location",
            service=ref.service,
            project=project[0] if project else None,
            region=region[0] if region else None,
            missing=missing,
        )
        raise err
    assert project is not None and region is not None
    return Location(project[0], region[0], ref.service, project[1], region[1])
