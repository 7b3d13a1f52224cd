"""Imports flow one way: cli → render → core. core never imports typer or rich (nor cli or
render); render never imports cli or typer; demo (the servers and stand-ins `crgrpc demo` and
`crgrpc serve` run) uses core, never cli, render, typer or rich; nothing in the package imports
the tests. Checked on the source, so a lazy import counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "cloudrun_grpc_cli"


def imported_names(path: Path) -> set[str]:
    """Absolute module names a file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(PKG.parent).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
    return names


def files(sub: str) -> list[Path]:
    return sorted(p for p in (PKG / sub).rglob("*.py") if "__pycache__" not in p.parts)


FORBIDDEN = {
    "core": ("typer", "rich", "cloudrun_grpc_cli.cli", "cloudrun_grpc_cli.render"),
    "render": ("typer", "cloudrun_grpc_cli.cli"),
    "demo": ("typer", "rich", "cloudrun_grpc_cli.cli", "cloudrun_grpc_cli.render"),
}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports(layer: str) -> None:
    assert files(layer), layer
    offenders = [
        f"{path.relative_to(PKG)} imports {name}"
        for path in files(layer)
        for name in imported_names(path)
        if name.startswith(FORBIDDEN[layer])
    ]
    assert offenders == []


def test_nothing_in_the_package_imports_the_tests() -> None:
    sources = files(".")
    assert PKG / "demo" / "issuer.py" in sources
    offenders = [
        f"{path.relative_to(PKG)} imports {name}"
        for path in sources
        for name in imported_names(path)
        if name.split(".")[0] in ("tests", "bench")
    ]
    assert offenders == []


def test_the_check_sees_relative_imports() -> None:
    names = imported_names(PKG / "cli" / "call.py")
    assert "cloudrun_grpc_cli.core.calls" in names
    assert "cloudrun_grpc_cli.errors" in names


# --- dependencies' private APIs: one adapter module each ------------------------------------

PRIVATE = {
    r"typer\._click": "cli/clickcompat.py",  # typer's vendored Click
    r"typer\._completion|_completion_(shared|classes)": "cli/clickcompat.py",  # its completion scripts
    r"(?<!self)\._channel\b|[\"']_channel[\"']": "core/grpcadapter.py",  # grpcio's Cython channel
}


@pytest.mark.parametrize("needle", sorted(PRIVATE))
def test_private_apis_live_in_one_adapter(needle: str) -> None:
    import re

    users = sorted(
        str(path.relative_to(PKG)) for path in PKG.rglob("*.py")
        if "__pycache__" not in path.parts and "_pb2" not in path.name
        and re.search(needle, path.read_text())
    )
    assert users == [PRIVATE[needle]], f"{needle} is used outside its adapter: {users}"


def test_grpc_adapter_still_reaches_grpcio_internals() -> None:
    import grpc

    from cloudrun_grpc_cli.core import grpcadapter

    channel = grpc.insecure_channel("127.0.0.1:1")
    try:
        assert grpcadapter.core_channel(channel) is not None, (
            "grpcio no longer has Channel._channel with check/watch_connectivity_state: "
            "update core/grpcadapter.py (crgrpc falls back to subscribe(), which slows close())"
        )
        assert grpcadapter.state(channel) in range(5)
    finally:
        channel.close()


def test_click_adapter_still_finds_no_args_is_help() -> None:
    from cloudrun_grpc_cli.cli import clickcompat

    cls = clickcompat.no_args_is_help_error()
    assert cls.__name__ == "NoArgsIsHelpError", "typer moved NoArgsIsHelpError: update cli/clickcompat.py"
    assert cls.__module__.startswith("typer._click"), (
        f"typer no longer vendors Click as typer._click ({cls.__module__}): update cli/clickcompat.py"
    )


def _reads_crgrpc_variable(node: ast.AST) -> bool:
    """os.environ.get("CRGRPC_…"), os.getenv(…), os.environ["CRGRPC_…"], also with f-strings."""

    def crgrpc(arg: ast.AST) -> bool:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value.startswith("CRGRPC")
        if isinstance(arg, ast.JoinedStr) and arg.values:
            return crgrpc(arg.values[0])
        return False

    if isinstance(node, ast.Call) and node.args:
        name = ast.unparse(node.func)
        return name.endswith(("environ.get", "getenv", "environ.pop", "environ.setdefault")) and crgrpc(node.args[0])
    if isinstance(node, ast.Subscript):
        return ast.unparse(node.value).endswith("environ") and crgrpc(node.slice)
    return False


def test_the_core_reads_no_crgrpc_variable() -> None:
    """CRGRPC_* variables belong to the CLI's option table; the core gets values in settings."""
    mentions = [str(p.relative_to(PKG)) for p in files("core") if "CRGRPC_" in p.read_text()]
    reads = [
        f"{p.relative_to(PKG)}:{node.lineno}"
        for p in files("core")
        for node in ast.walk(ast.parse(p.read_text()))
        if _reads_crgrpc_variable(node)
    ]
    assert (mentions, reads) == ([], [])


def test_the_crgrpc_variable_check_sees_reads() -> None:
    code = 'os.environ.get("CRGRPC_X")\nos.getenv(f"CRGRPC_{n}")\nos.environ["CRGRPC_Y"]\nos.environ.get("HOME")\n'
    hits = [n.lineno for n in ast.walk(ast.parse(code)) if _reads_crgrpc_variable(n)]
    assert sorted(hits) == [1, 2, 3]


def test_the_product_refers_to_no_document_outside_the_repository() -> None:
    """Docstrings and docs name README.md or ARCHITECTURE.md, never the design notes
    the project started from (they are not shipped)."""
    root = PKG.parent
    texts = [*PKG.rglob("*.py"), root / "README.md", root / "ARCHITECTURE.md"]
    offenders = [
        str(p.relative_to(root)) for p in texts
        if "__pycache__" not in p.parts and ("DESIGN.md" in p.read_text() or "../shared" in p.read_text())
    ]
    assert offenders == []
