"""Schema sources from files: FileDescriptorSets (--protoset) and .proto files (--proto).

Owns reading protosets, compiling .proto files in-process with grpcio-tools'
protoc (the optional `protos` extra), and writing what a source has loaded
as a protoset (--protoset-out).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError

from ...errors import SchemaError
from .assemble import Assembler
from .source import PoolSource, SchemaSource

PROTOS_EXTRA_HINT = "pip install 'crgrpc[protos]'"


def protoset_source(paths: Sequence[Path]) -> PoolSource:
    """A source over the files of one or more FileDescriptorSet files."""
    files: list[descriptor_pb2.FileDescriptorProto] = []
    for path in paths:
        files.extend(_read_protoset(Path(path)).file)
    origin = ", ".join(str(p) for p in paths) or "protoset"
    return _assemble(files, origin)


def _read_protoset(path: Path) -> descriptor_pb2.FileDescriptorSet:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SchemaError(f"cannot read protoset {path}: {exc.strerror or exc}") from None
    try:
        fds = descriptor_pb2.FileDescriptorSet.FromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise SchemaError(
            f"{path} is not a protoset (a serialized FileDescriptorSet): {exc}",
            "make one with: protoc --include_imports --descriptor_set_out=FILE ...",
        ) from None
    if not fds.file and data:
        raise SchemaError(f"{path} is not a protoset: it holds no files")
    for fdp in fds.file:
        if not fdp.name:
            raise SchemaError(f"{path} is not a protoset: a file in it has no name")
    return fds


def _assemble(files: Sequence[descriptor_pb2.FileDescriptorProto], origin: str) -> PoolSource:
    asm = Assembler(origin)
    missing = asm.missing_imports(files)
    if missing:
        raise SchemaError(
            f"{origin}: imported file {missing[0]} is not in the protoset",
            "build it with protoc --include_imports so it holds every dependency",
        )
    asm.add(files)
    return PoolSource(asm)


def proto_source(paths: Sequence[Path], import_paths: Sequence[Path]) -> PoolSource:
    """Compile .proto files in-process with grpcio-tools and serve their schema."""
    try:
        import grpc_tools
        from grpc_tools import protoc
    except ImportError:
        raise SchemaError("--proto needs the protos extra", PROTOS_EXTRA_HINT) from None
    if not paths:
        raise SchemaError("no .proto files given")
    includes = [Path(p).resolve() for p in import_paths] or [Path(".").resolve()]
    for path in paths:
        if not Path(path).is_file():
            raise SchemaError(f"cannot read {path}: no such file")
        resolved = Path(path).resolve()
        if not any(_within(resolved, inc) for inc in includes):
            includes.append(resolved.parent)  # a file outside every -I: its own directory
    bundled = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory(prefix="crgrpc-protoc-") as tmp:
        out = Path(tmp) / "out.protoset"
        args = [
            "grpc_tools.protoc",
            *(f"--proto_path={inc}" for inc in includes),
            f"--proto_path={bundled}",
            f"--descriptor_set_out={out}",
            "--include_imports",
            "--include_source_info",
            *(str(p) for p in paths),
        ]
        code, errors = _run_protoc(protoc.main, args)
        if code != 0 or not out.exists():
            lines = [ln.strip() for ln in errors.splitlines() if ln.strip()]
            first = lines[0] if lines else f"protoc failed with exit code {code}"
            raise SchemaError(f"cannot compile .proto: {first}", *lines[1:6])
        fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    origin = ", ".join(str(p) for p in paths)
    return _assemble(list(fds.file), origin)


def _within(path: Path, directory: Path) -> bool:
    try:
        path.relative_to(directory.resolve())
    except ValueError:
        return False
    return True


def _run_protoc(main: Callable[[list[str]], int], args: list[str]) -> tuple[int, str]:
    """Run protoc in-process; its C++ code writes errors to file descriptor 2, so capture that."""
    with tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            try:
                code = int(main(args))
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
        finally:
            os.close(saved)
        sink.seek(0)
        return code, sink.read().decode(errors="replace")


def write_protoset(source: SchemaSource, path: Path) -> None:
    """Write every file source has loaded, with dependencies, as a FileDescriptorSet."""
    data = source.file_descriptor_set().SerializeToString()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise SchemaError(f"cannot write protoset {path}: {exc.strerror or exc}") from None
