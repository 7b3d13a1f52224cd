"""Habits from grpcurl, caught before Click reads argv: one dash on a long flag
(`-plaintext`), grpcurl's own flag names (`-max-time`, `-rpc-header`), and
flags written before the command (`crgrpc --plaintext call …`).

Click would say "no such option: -p" for all of them; these say what to type.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from ..errors import UsageError

# grpcurl's names for crgrpc's options, where they differ.
GRPCURL = {
    "-max-time": "--timeout",
    "-rpc-header": "-H",
    "-reflect-header": "-H",
    "-max-msg-sz": "--max-msg-size",
    "-import-path": "-I",
    "-format": "-o",
}


@functools.cache
def _long_flags() -> dict[str, bool]:
    """Every long flag of the option table → whether it takes a value."""
    from .options import OPTIONS

    flags: dict[str, bool] = {}
    for row in OPTIONS:
        for decl in row.flags:
            for flag in decl.split("/"):
                if flag.startswith("--"):
                    flags[flag] = row.kind is not bool or row.is_list
    return flags


def check(args: Sequence[str], commands: Sequence[str]) -> None:
    """UsageError for a grpcurl habit in args; nothing otherwise. The option table's
    flags are gathered only when an argument could be such a habit (not on every start)."""
    for arg in args:
        if arg == "--":
            break
        name = arg.split("=", 1)[0]
        if name in GRPCURL:
            raise UsageError(
                f"unknown option {name}", f"did you mean {GRPCURL[name]}? ({name} is grpcurl's name)"
            )
        if name.startswith("-") and not name.startswith("--") and len(name) > 2 and "-" + name in _long_flags():
            raise UsageError(
                f"unknown option {name}", f"did you mean -{name}? (crgrpc's long options take two dashes)"
            )
    _flags_before_command(args, commands)


def _flags_before_command(args: Sequence[str], commands: Sequence[str]) -> None:
    """`crgrpc --plaintext call HOST M` → show where the flags go."""
    if not args or not args[0].startswith("-") or args[0] in ("-h", "--help", "--version"):
        return
    flags = _long_flags()
    leading: list[str] = []
    i = 0
    while i < len(args) and args[i].startswith("-"):
        arg = args[i]
        leading.append(arg)
        takes_value = flags.get(arg.split("=", 1)[0], arg in ("-d", "-H", "-o", "-I"))
        if takes_value and "=" not in arg and i + 1 < len(args):
            leading.append(args[i + 1])
            i += 1
        i += 1
    if i >= len(args) or args[i] not in commands:
        return
    command = args[i]
    rest = list(args[i + 1 :])
    if command == "token" and rest and not rest[0].startswith("-"):
        command, rest = f"token {rest[0]}", rest[1:]
    import shlex

    fixed = shlex.join(["crgrpc", *command.split(), *leading, *rest])
    raise UsageError(
        f"options go after the command: {leading[0]} comes before '{command}'",
        f"write: {fixed}",
    )
