"""protoc's derived names (json_name, map entry types)."""

from __future__ import annotations


def camel_case(name: str, *, upper_first: bool) -> str:
    """protoc's camel-casing: foo_bar -> fooBar (json_name) or FooBar (map entry types)."""
    out: list[str] = []
    upper = upper_first
    for ch in name:
        if ch == "_":
            upper = True
            continue
        out.append(ch.upper() if upper else ch)
        upper = False
    return "".join(out)
