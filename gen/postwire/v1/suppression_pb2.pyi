import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SuppressionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUPPRESSION_KIND_UNSPECIFIED: _ClassVar[SuppressionKind]
    SUPPRESSION_KIND_HARD_BOUNCE: _ClassVar[SuppressionKind]
    SUPPRESSION_KIND_COMPLAINT: _ClassVar[SuppressionKind]
    SUPPRESSION_KIND_UNSUBSCRIBE: _ClassVar[SuppressionKind]
    SUPPRESSION_KIND_MANUAL: _ClassVar[SuppressionKind]
SUPPRESSION_KIND_UNSPECIFIED: SuppressionKind
SUPPRESSION_KIND_HARD_BOUNCE: SuppressionKind
SUPPRESSION_KIND_COMPLAINT: SuppressionKind
SUPPRESSION_KIND_UNSUBSCRIBE: SuppressionKind
SUPPRESSION_KIND_MANUAL: SuppressionKind

class Suppression(_message.Message):
    __slots__ = ("address", "kind", "reason", "message_id", "created_at")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    address: str
    kind: SuppressionKind
    reason: str
    message_id: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, address: _Optional[str] = ..., kind: _Optional[_Union[SuppressionKind, str]] = ..., reason: _Optional[str] = ..., message_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
