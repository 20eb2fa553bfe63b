"""buf plugin: one FileDescriptorSet (with every import) for Envoy's transcoder.

Envoy's grpc_json_transcoder loads the service's descriptors from a binary file.
The set holds every file of the request (the files to generate and all they import,
in dependency order) plus google/rpc/{status,error_details}.proto, so that Envoy can
render the rich error details (google.rpc.BadRequest, RetryInfo, ...) the server
attaches to failed calls.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool
from google.rpc import error_details_pb2, status_pb2

from buf_plugin import read_request, write_response

OUTPUT_NAME = "postwire.binpb"


def _file_proto(name: str) -> descriptor_pb2.FileDescriptorProto:
    found = descriptor_pool.Default().FindFileByName(name)
    return descriptor_pb2.FileDescriptorProto.FromString(found.serialized_pb)


def main() -> None:
    request = read_request()
    files = list(request.proto_file)
    seen = {f.name for f in files}

    def add(name: str) -> None:
        if name in seen:
            return
        proto = _file_proto(name)
        for dependency in proto.dependency:
            add(dependency)
        files.append(proto)
        seen.add(name)

    for module in (status_pb2, error_details_pb2):
        add(module.DESCRIPTOR.name)
    descriptor_set = descriptor_pb2.FileDescriptorSet(file=files)
    write_response([(OUTPUT_NAME, descriptor_set.SerializeToString(deterministic=True))])


if __name__ == "__main__":
    main()
