"""Shared plumbing for the project's local buf plugins.

A buf (protoc) plugin reads a CodeGeneratorRequest on stdin and writes a
CodeGeneratorResponse on stdout. The response is encoded by hand here because one
of our outputs is binary (a descriptor set) and protobuf's Python runtime only
accepts UTF-8 in `string` fields; plugin.proto is proto2, whose strings buf reads
as raw bytes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from google.protobuf.compiler import plugin_pb2

FEATURE_PROTO3_OPTIONAL = 1


def read_request() -> plugin_pb2.CodeGeneratorRequest:
    return plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def write_response(files: Iterable[tuple[str, bytes]]) -> None:
    """Write a CodeGeneratorResponse holding the given (name, content) files."""
    body = _varint(2 << 3 | 0) + _varint(FEATURE_PROTO3_OPTIONAL)  # supported_features
    for name, content in files:
        body += _field(15, _field(1, name.encode()) + _field(15, content))
    sys.stdout.buffer.write(body)
