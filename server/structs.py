"""google.protobuf.Struct (template variables) as plain Python values: whole numbers
become ints (JSON has one number type, and `{{ count }}` should print 3, not 3.0)."""

from __future__ import annotations

from typing import Any

from google.protobuf.struct_pb2 import ListValue, Struct, Value


def struct_to_dict(struct: Struct) -> dict[str, Any]:
    return {key: _value(value) for key, value in struct.fields.items()}


def _value(value: Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return _list(value.list_value)
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    return None


def _list(values: ListValue) -> list[Any]:
    return [_value(v) for v in values.values]


def dict_to_struct(values: dict[str, Any]) -> Struct:
    struct = Struct()
    struct.update(values)
    return struct
