"""Record grpc-node's reflection answers into tests/data/.

Starts a grpc-js test server on a free port (needs `npm ci` in tests/node),
asks it every request crgrpc's reflection client may make for the served
schema (list_services; file_containing_symbol for each service, method,
message, enum and field; file_by_filename for each file it names and for the
real file names; a few unknown names), and saves each raw
ServerReflectionResponse, base64, keyed by its request; the file descriptors
of file answers are stored once each under "files" and named by index in the
answer's "files" (load with tests/support/reflection_servers.load_recording).

Run from the repository root:
  .venv/bin/python tests/node/record.py            # server.js -> node_reflection.json
  .venv/bin/python tests/node/record.py common     # common_server.js -> node_common_reflection.json
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
#: recording name -> (server script, output file, real file names also asked for by
#: name, symbols no service reaches that are asked for too)
RECORDINGS = {
    "echo": (
        "server.js",
        REPO / "tests" / "data" / "node_reflection.json",
        [
            "echo.proto",
            "shop/v1/catalog.proto",
            "shop/common/money.proto",
            "google/protobuf/timestamp.proto",
            "google/protobuf/struct.proto",
        ],
        [],
    ),
    "common": (
        "common_server.js",
        REPO / "tests" / "data" / "node_common_reflection.json",
        [
            "health/v1/health.proto",
            "channelz.proto",
            "library/v1/library.proto",
            "validate/validate.proto",
            "google/api/annotations.proto",
            "legacy/legacy.proto",
        ],
        ["legacy.Old", "legacy.Mode", "legacy.flagged"],
    ),
}
V1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


def start_node(script: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        ["node", str(HERE / script), "0"], stdout=subprocess.PIPE, text=True
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


def main(argv: list[str]) -> int:
    which = argv[0] if argv else "echo"
    if which not in RECORDINGS:
        raise SystemExit(f"usage: record.py [{'|'.join(RECORDINGS)}]")
    script, out, real_names, unreached = RECORDINGS[which]
    proc, address = start_node(script)
    try:
        channel = grpc.insecure_channel(address)
        call = channel.stream_stream(
            V1,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        exchanges: list[dict[str, object]] = []
        seen: set[str] = set()
        # Servers repeat the same few files in most answers: each distinct
        # serialized file is stored once, answers name them by index.
        blobs: list[bytes] = []
        index: dict[bytes, int] = {}

        def ask(**kwargs: str) -> reflection_pb2.ServerReflectionResponse:
            request = reflection_pb2.ServerReflectionRequest(**kwargs)
            key = json.dumps(json_format.MessageToDict(request), sort_keys=True)
            response = next(iter(call(iter([request]), timeout=10)))
            if key not in seen:
                seen.add(key)
                rest = reflection_pb2.ServerReflectionResponse()
                rest.CopyFrom(response)
                found: list[bytes] = []
                if rest.WhichOneof("message_response") == "file_descriptor_response":
                    found = list(rest.file_descriptor_response.file_descriptor_proto)
                    del rest.file_descriptor_response.file_descriptor_proto[:]
                exchange: dict[str, object] = {
                    "request": json_format.MessageToDict(request),
                    "response": base64.b64encode(rest.SerializeToString()).decode(),
                }
                if found:
                    exchange["files"] = [index.setdefault(b, len(index)) for b in found]
                    blobs.extend(b for b in found if index[b] == len(blobs))
                exchanges.append(exchange)
            return response

        listed = ask(list_services="*")
        pending = [s.name for s in listed.list_services_response.service]
        pending += [*unreached, "nope.Nothing", "echo.Missing"]
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
        for name in [*files, *real_names]:
            ask(file_by_filename=name)
        doc = {
            "recorded_from": f"node tests/node/{script} (@grpc/grpc-js, @grpc/proto-loader, "
            "@grpc/reflection as pinned in tests/node/package-lock.json)",
            "exchanges": exchanges,
            "files": [base64.b64encode(b).decode() for b in blobs],
        }
        out.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"recorded {len(exchanges)} exchanges into {out.relative_to(REPO)}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
