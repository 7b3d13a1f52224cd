"""The config file, named targets, and the precedence of DESIGN.md:
flags > the named target's table > CRGRPC_* variables > config defaults.

config.toml:

    [defaults]                 # any option, by its long name with _ for -
    output = "json"

    [targets.prod]             # `crgrpc call prod SayHello`
    address = "https://echo-abc-uc.a.run.app"
    key_file = "~/keys/sa.json"
    header = ["x-env: prod"]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .options import _DEFAULTS, _SPECS, PATH_LISTS, CommonOptions

_BOOL = {"plaintext", "insecure", "include_email", "serverless_auth", "allow_plaintext_token",
         "no_token_cache", "show_token", "no_schema_cache", "emit_defaults", "proto_names",
         "verbose", "debug"}
_LIST = {"header", "retry_on", "proto", "import_path", "protoset"}
_PATH = {"cacert", "cert", "key", "token_file", "key_file", "protoset_out"}
_FLOAT = {"connect_timeout"}
_INT = {"max_msg_size", "retries"}
_NOT_IN_FILE = {"config"}


def config_path(config: Path | None) -> tuple[Path, bool]:
    """The config file (--config, else the XDG default) and whether the user named it."""
    if config is not None:
        return Path(config).expanduser(), True
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "crgrpc" / "config.toml", False


def load_config(config: Path | None) -> tuple[dict[str, Any], Path | None]:
    path, explicit = config_path(config)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise UsageError(f"cannot read --config {str(path)!r}: no such file") from None
        return {}, None
    except OSError as e:
        raise UsageError(f"cannot read config {str(path)!r}: {e.strerror or e}") from None
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"invalid config {str(path)!r}: {e}", "the config file is TOML") from None
    for key in data:
        if key not in ("defaults", "targets"):
            raise UsageError(
                f"invalid config {str(path)!r}: unknown table [{key}]",
                "the config has [defaults] and [targets.NAME] tables",
            )
    return data, path


def _convert(name: str, value: Any, where: str) -> Any:
    def bad(kind: str) -> UsageError:
        return UsageError(f"invalid config: {where}.{name} must be {kind}, not {value!r}")

    if name in _BOOL:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if name in _LIST:
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(i, str) for i in items):
            raise bad("a string or a list of strings")
        return [Path(i).expanduser() for i in items] if name in PATH_LISTS else list(items)
    if name in _FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if name in _INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("a whole number")
        return value
    if name == "auth":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if not isinstance(value, str):
        raise bad("a string")
    return Path(value).expanduser() if name in _PATH else value


def _table(data: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name == "address" and where.startswith("targets."):
            continue
        if name not in _SPECS or name in _NOT_IN_FILE:
            raise UsageError(
                f"invalid config: unknown option {where}.{key}",
                "options are the long flag names with _ for -, e.g. key_file",
            )
        out[name] = _convert(name, value, where)
    return out


def named_target(data: dict[str, Any], text: str) -> tuple[str, dict[str, Any]]:
    """A named target's address and its options (converted), or text and {} for a host."""
    entry = (data.get("targets", {}) or {}).get(text)
    if entry is None:
        return text, {}
    if not isinstance(entry, dict) or not isinstance(entry.get("address"), str):
        raise UsageError(
            f"invalid config: targets.{text} needs an address string",
            'address = "https://SERVICE.run.app"',
        )
    return entry["address"], _table(entry, f"targets.{text}")


def apply_config(opts: CommonOptions, target_text: str | None) -> tuple[CommonOptions, str | None]:
    """Resolve a named target and merge the config file by precedence."""
    data, path = load_config(opts.config)
    defaults = _table(data.get("defaults", {}) or {}, "defaults")
    table: dict[str, Any] = {}
    if target_text is not None:
        target_text, table = named_target(data, target_text)
    values: dict[str, Any] = {}
    origins = dict(opts.origins or {})
    for name, origin in (opts.origins or {}).items():
        if origin == "flag":
            continue
        if name in table:
            values[name], origins[name] = table[name], "target"
        elif origin == "env":
            continue
        elif name in defaults:
            values[name], origins[name] = defaults[name], "config"
    if path is not None:
        origins["config"] = str(path)
    return opts._replace(**values, origins=origins), target_text


def effective(opts: CommonOptions) -> list[tuple[str, Any, str]]:
    """(option, value, origin) for every option, tokens redacted."""
    rows = []
    for name in _DEFAULTS:
        if name == "config":
            continue
        value = getattr(opts, name)
        if name == "token" and value:
            from ..core.auth.jwt import redact

            value = redact(str(value))
        if isinstance(value, Path):
            value = str(value)
        if isinstance(value, list):
            value = [str(v) for v in value]
        rows.append((name, value, (opts.origins or {}).get(name, "default")))
    return rows
