import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Scope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCOPE_UNSPECIFIED: _ClassVar[Scope]
    SCOPE_SEND: _ClassVar[Scope]
    SCOPE_READ: _ClassVar[Scope]
    SCOPE_EVENTS: _ClassVar[Scope]
    SCOPE_ADMIN: _ClassVar[Scope]

class ApiKeyKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    API_KEY_KIND_UNSPECIFIED: _ClassVar[ApiKeyKind]
    API_KEY_KIND_LIVE: _ClassVar[ApiKeyKind]
    API_KEY_KIND_TEST: _ClassVar[ApiKeyKind]
SCOPE_UNSPECIFIED: Scope
SCOPE_SEND: Scope
SCOPE_READ: Scope
SCOPE_EVENTS: Scope
SCOPE_ADMIN: Scope
API_KEY_KIND_UNSPECIFIED: ApiKeyKind
API_KEY_KIND_LIVE: ApiKeyKind
API_KEY_KIND_TEST: ApiKeyKind

class ApiKey(_message.Message):
    __slots__ = ("key_id", "name", "kind", "scopes", "prefix", "created_at", "expires_at", "revoked_at", "send_per_minute", "read_per_minute", "max_streams")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    SEND_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    READ_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    MAX_STREAMS_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    name: str
    kind: ApiKeyKind
    scopes: _containers.RepeatedScalarFieldContainer[Scope]
    prefix: str
    created_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    revoked_at: _timestamp_pb2.Timestamp
    send_per_minute: int
    read_per_minute: int
    max_streams: int
    def __init__(self, key_id: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[_Union[ApiKeyKind, str]] = ..., scopes: _Optional[_Iterable[_Union[Scope, str]]] = ..., prefix: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., send_per_minute: _Optional[int] = ..., read_per_minute: _Optional[int] = ..., max_streams: _Optional[int] = ...) -> None: ...
