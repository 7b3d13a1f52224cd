"""Record grpc-node's reflection answers into tests/data/node_reflection.json.

Starts `node tests/node/server.js` on a free port (needs `npm ci` in
tests/node), asks it every request crgrpc's reflection client may make for
the served schema (list_services; file_containing_symbol for each service,
method, message, enum and field; file_by_filename for each file it names and
for the real file names; a few unknown names), and saves each raw
ServerReflectionResponse, base64, keyed by its request.

Run from the repository root:  .venv/bin/python tests/node/record.py
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import grpc
from google.protobuf import descriptor_pb2, json_format
from grpc_reflection.v1alpha import reflection_pb2

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
OUT = REPO / "tests" / "data" / "node_reflection.json"
V1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


def start_node() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        ["node", str(HERE / "server.js"), "0"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"node server did not start: {line!r}")
    return proc, line.removeprefix("listening on ")


def symbols(fdp: descriptor_pb2.FileDescriptorProto) -> list[str]:
    out: list[str] = []
    prefix = f"{fdp.package}." if fdp.package else ""

    def message(msg: descriptor_pb2.DescriptorProto, full: str) -> None:
        out.append(full)
        out.extend(f"{full}.{f.name}" for f in msg.field)
        for nested in msg.nested_type:
            message(nested, f"{full}.{nested.name}")
        out.extend(f"{full}.{e.name}" for e in msg.enum_type)

    for msg in fdp.message_type:
        message(msg, prefix + msg.name)
    out.extend(prefix + e.name for e in fdp.enum_type)
    for svc in fdp.service:
        out.append(prefix + svc.name)
        out.extend(f"{prefix}{svc.name}.{m.name}" for m in svc.method)
    return out


def main() -> int:
    proc, address = start_node()
    try:
        channel = grpc.insecure_channel(address)
        call = channel.stream_stream(
            V1,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        exchanges: list[dict[str, object]] = []
        seen: set[str] = set()

        def ask(**kwargs: str) -> reflection_pb2.ServerReflectionResponse:
            request = reflection_pb2.ServerReflectionRequest(**kwargs)
            key = json.dumps(json_format.MessageToDict(request), sort_keys=True)
            response = next(iter(call(iter([request]), timeout=10)))
            if key not in seen:
                seen.add(key)
                exchanges.append(
                    {
                        "request": json_format.MessageToDict(request),
                        "response": base64.b64encode(response.SerializeToString()).decode(),
                    }
                )
            return response

        listed = ask(list_services="*")
        pending = [s.name for s in listed.list_services_response.service]
        pending += ["nope.Nothing", "echo.Missing"]
        files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
        asked: set[str] = set()
        while pending:
            symbol = pending.pop(0)
            if symbol in asked:
                continue
            asked.add(symbol)
            response = ask(file_containing_symbol=symbol)
            for data in response.file_descriptor_response.file_descriptor_proto:
                fdp = descriptor_pb2.FileDescriptorProto.FromString(data)
                if fdp.name not in files:
                    files[fdp.name] = fdp
                    pending.extend(symbols(fdp))
        for name in [
            *files,
            "echo.proto",
            "shop/v1/catalog.proto",
            "shop/common/money.proto",
            "google/protobuf/timestamp.proto",
            "google/protobuf/struct.proto",
        ]:
            ask(file_by_filename=name)
        doc = {
            "recorded_from": "node tests/node/server.js (@grpc/grpc-js, @grpc/proto-loader, "
            "@grpc/reflection as pinned in tests/node/package-lock.json)",
            "exchanges": exchanges,
        }
        OUT.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"recorded {len(exchanges)} exchanges into {OUT.relative_to(REPO)}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
