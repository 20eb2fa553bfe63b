import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_QUEUED: _ClassVar[EventType]
    EVENT_TYPE_SENDING: _ClassVar[EventType]
    EVENT_TYPE_SENT: _ClassVar[EventType]
    EVENT_TYPE_DEFERRED: _ClassVar[EventType]
    EVENT_TYPE_BOUNCED: _ClassVar[EventType]
    EVENT_TYPE_FAILED: _ClassVar[EventType]
    EVENT_TYPE_SUPPRESSED: _ClassVar[EventType]
    EVENT_TYPE_SCHEDULED: _ClassVar[EventType]
    EVENT_TYPE_CANCELED: _ClassVar[EventType]
    EVENT_TYPE_WEBHOOK_DISABLED: _ClassVar[EventType]
    EVENT_TYPE_DELAYED: _ClassVar[EventType]
    EVENT_TYPE_COMPLAINED: _ClassVar[EventType]
    EVENT_TYPE_UNSUBSCRIBED: _ClassVar[EventType]
    EVENT_TYPE_OPENED: _ClassVar[EventType]
    EVENT_TYPE_CLICKED: _ClassVar[EventType]
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_QUEUED: EventType
EVENT_TYPE_SENDING: EventType
EVENT_TYPE_SENT: EventType
EVENT_TYPE_DEFERRED: EventType
EVENT_TYPE_BOUNCED: EventType
EVENT_TYPE_FAILED: EventType
EVENT_TYPE_SUPPRESSED: EventType
EVENT_TYPE_SCHEDULED: EventType
EVENT_TYPE_CANCELED: EventType
EVENT_TYPE_WEBHOOK_DISABLED: EventType
EVENT_TYPE_DELAYED: EventType
EVENT_TYPE_COMPLAINED: EventType
EVENT_TYPE_UNSUBSCRIBED: EventType
EVENT_TYPE_OPENED: EventType
EVENT_TYPE_CLICKED: EventType

class Event(_message.Message):
    __slots__ = ("cursor", "message_id", "type", "occurred_at", "smtp_code", "smtp_message", "detail", "recipient")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SMTP_CODE_FIELD_NUMBER: _ClassVar[int]
    SMTP_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    cursor: str
    message_id: str
    type: EventType
    occurred_at: _timestamp_pb2.Timestamp
    smtp_code: int
    smtp_message: str
    detail: str
    recipient: str
    def __init__(self, cursor: _Optional[str] = ..., message_id: _Optional[str] = ..., type: _Optional[_Union[EventType, str]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., smtp_code: _Optional[int] = ..., smtp_message: _Optional[str] = ..., detail: _Optional[str] = ..., recipient: _Optional[str] = ...) -> None: ...
