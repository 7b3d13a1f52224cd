"""Regenerate the committed Echo protobuf code from protos/echo.proto.

Run: python tools/gen_protos.py [OUT_DIR]  (default: cloudrun_grpc_cli/demo)
tests/test_generated.py runs it into a temporary folder and fails on drift.
Needs grpcio-tools (the `dev` or `protos` extra).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"
DEFAULT_OUT = ROOT / "cloudrun_grpc_cli" / "demo"


def generate(out_dir: Path) -> list[Path]:
    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(PROTO_DIR / "echo.proto"),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    grpc_file = out_dir / "echo_pb2_grpc.py"
    # grpc's plugin writes an absolute import; the package needs a relative one.
    text = grpc_file.read_text()
    text = text.replace("import echo_pb2 as echo__pb2", "from . import echo_pb2 as echo__pb2")
    grpc_file.write_text(text)
    return [out_dir / n for n in ("echo_pb2.py", "echo_pb2.pyi", "echo_pb2_grpc.py")]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    for path in generate(target):
        print(path)
