"""buf plugin: gRPC Python stubs, by running grpc_tools' bundled protoc.

buf has no built-in grpc_python generator and grpcio-tools ships it only inside its
protoc, so this plugin hands the request's descriptors to that protoc and returns
what it writes.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

from google.protobuf import descriptor_pb2
from grpc_tools import protoc

from buf_plugin import read_request, write_response


def main() -> None:
    request = read_request()
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        descriptors = root / "in.binpb"
        descriptors.write_bytes(
            descriptor_pb2.FileDescriptorSet(file=request.proto_file).SerializeToString()
        )
        out = root / "out"
        out.mkdir()
        args = [
            "grpc_tools.protoc",
            f"--descriptor_set_in={descriptors}",
            f"--grpc_python_out={out}",
            *request.file_to_generate,
        ]
        if protoc.main(args) != 0:
            sys.exit("grpc_tools.protoc failed")
        write_response(
            (str(path.relative_to(out)), path.read_bytes())
            for path in sorted(out.rglob("*.py"))
        )


if __name__ == "__main__":
    main()
