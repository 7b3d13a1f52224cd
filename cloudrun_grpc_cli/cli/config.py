"""The config file, named targets, and the precedence (README: Configuration):
flags > the named target's table > CRGRPC_* variables > config defaults.

config.toml:

    [defaults]                 # any option, by its long name with _ for -
    output = "json"

    [targets.prod]             # `crgrpc call prod SayHello`
    address = "https://echo-abc-uc.a.run.app"
    key_file = "~/keys/sa.json"
    header = ["x-env: prod"]

What a key may hold, and its range, comes from the option table (cli/options.py):
a value gets exactly the checks of its flag. Any problem is a UsageError (exit 2)
naming the file and the key.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .options import OPTION_NAMES, ROWS, CommonOptions, Opt

# Option name → its row, for the options the config file may set.
_IN_FILE = {ROWS[n].config_key: ROWS[n] for n in OPTION_NAMES if ROWS[n].config_key}


def config_path(config: Path | None) -> tuple[Path, bool]:
    """The config file (--config, else the XDG default) and whether the user named it."""
    if config is not None:
        return Path(config).expanduser(), True
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "crgrpc" / "config.toml", False


def load_config(config: Path | None) -> tuple[dict[str, Any], Path | None]:
    """The config file's data (checked whole: shapes and every value) and its path."""
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
        raise UsageError(f"invalid config {path}: {e}", "the config file is TOML") from None
    for key in data:
        if key not in ("defaults", "targets"):
            raise UsageError(
                f"invalid config {path}: unknown table [{key}]",
                "the config has [defaults] and [targets.NAME] tables",
            )
    _table(data.get("defaults", {}), "defaults", path)
    targets = data.get("targets", {})
    if not isinstance(targets, dict):
        raise _bad_shape(path, "targets", "[targets.NAME] tables, each with an address")
    for name in targets:
        named_target(data, name, path=path)
    return data, path


def _bad_shape(path: Path | None, where: str, hint: str) -> UsageError:
    return UsageError(f"{_invalid(path)}: {where} must be a table", f"the config has {hint}")


def _invalid(path: Path | None) -> str:
    return f"invalid config {path}" if path is not None else "invalid config"


def _shown(value: Any) -> str:
    """A config value as the error shows it (TOML's spelling for booleans and tables)."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _convert(row: Opt, key: str, value: Any, where: str, path: Path | None) -> Any:
    """A config value converted and checked exactly as the flag's value would be."""
    kind = row.kind

    def bad(what: str) -> UsageError:
        return UsageError(
            f"{_invalid(path)}: {where}.{key} must be {what}, not {_shown(value)}"
        )

    if row.is_list:
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(i, str) for i in items):
            raise bad("a string or a list of strings")
        return [Path(i).expanduser() for i in items] if kind is Path else list(items)
    if kind is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if row.is_number:
        if isinstance(value, str):  # TOML has numbers: "5" is a string
            raise bad(row.range_text)
        try:
            return row.parse(value)
        except ValueError:
            raise bad(row.range_text) from None
    if not isinstance(value, str):
        raise bad("a string")
    return Path(value).expanduser() if kind is Path else value


def _table(data: Any, where: str, path: Path | None = None) -> dict[str, Any]:
    if not isinstance(data, dict):
        hint = "[defaults] with options" if where == "defaults" else f"[{where}] with an address"
        raise _bad_shape(path, where, hint)
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name == "address" and where.startswith("targets."):
            continue
        row = _IN_FILE.get(name)
        if row is None:
            raise UsageError(
                f"{_invalid(path)}: unknown option {where}.{key}",
                "options are the long flag names with _ for -, e.g. key_file",
            )
        out[name] = _convert(row, key, value, where, path)
    return out


def named_target(
    data: dict[str, Any], text: str, *, path: Path | None = None
) -> tuple[str, dict[str, Any]]:
    """A named target's address and its options (converted), or text and {} for a host."""
    targets = data.get("targets", {})
    entry = targets.get(text) if isinstance(targets, dict) else None
    if entry is None:
        return text, {}
    where = f"targets.{text}"
    if not isinstance(entry, dict):
        raise _bad_shape(path, where, f'[{where}] with address = "https://SERVICE.run.app"')
    if not isinstance(entry.get("address"), str):
        raise UsageError(
            f"{_invalid(path)}: {where} needs an address string",
            'address = "https://SERVICE.run.app"',
        )
    return entry["address"], _table(entry, where, path)


def apply_config(opts: CommonOptions, target_text: str | None) -> tuple[CommonOptions, str | None]:
    """Resolve a named target and merge the config file by precedence."""
    data, path = load_config(opts.config)
    defaults = _table(data.get("defaults", {}), "defaults", path)
    table: dict[str, Any] = {}
    if target_text is not None:
        target_text, table = named_target(data, target_text, path=path)
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


def target_names(config: Path | None) -> tuple[str, ...]:
    """The names of the config file's [targets.NAME] tables."""
    data, _ = load_config(config)
    targets = data.get("targets")
    return tuple(sorted(targets)) if isinstance(targets, dict) else ()


def effective(opts: CommonOptions) -> list[tuple[str, Any, str]]:
    """(option, value, origin) for every option, tokens redacted."""
    rows = []
    for name in OPTION_NAMES:
        if name == "config":
            continue
        value = getattr(opts, name)
        if name == "token" and value:
            from ..core.auth.jwt import redact

            value = redact(str(value))
        if name == "proxy" and value:
            from ..core.egress import shown_url

            value = shown_url(str(value))
        if isinstance(value, Path):
            value = str(value)
        if isinstance(value, list):
            value = [str(v) for v in value]
        rows.append((name, value, (opts.origins or {}).get(name, "default")))
    return rows
