import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from postwire.v1 import event_pb2 as _event_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WebhookEndpointState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WEBHOOK_ENDPOINT_STATE_UNSPECIFIED: _ClassVar[WebhookEndpointState]
    WEBHOOK_ENDPOINT_STATE_ENABLED: _ClassVar[WebhookEndpointState]
    WEBHOOK_ENDPOINT_STATE_DISABLED: _ClassVar[WebhookEndpointState]

class WebhookAttemptOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WEBHOOK_ATTEMPT_OUTCOME_UNSPECIFIED: _ClassVar[WebhookAttemptOutcome]
    WEBHOOK_ATTEMPT_OUTCOME_DELIVERED: _ClassVar[WebhookAttemptOutcome]
    WEBHOOK_ATTEMPT_OUTCOME_RETRYING: _ClassVar[WebhookAttemptOutcome]
    WEBHOOK_ATTEMPT_OUTCOME_FAILED: _ClassVar[WebhookAttemptOutcome]
    WEBHOOK_ATTEMPT_OUTCOME_ENDPOINT_DISABLED: _ClassVar[WebhookAttemptOutcome]
WEBHOOK_ENDPOINT_STATE_UNSPECIFIED: WebhookEndpointState
WEBHOOK_ENDPOINT_STATE_ENABLED: WebhookEndpointState
WEBHOOK_ENDPOINT_STATE_DISABLED: WebhookEndpointState
WEBHOOK_ATTEMPT_OUTCOME_UNSPECIFIED: WebhookAttemptOutcome
WEBHOOK_ATTEMPT_OUTCOME_DELIVERED: WebhookAttemptOutcome
WEBHOOK_ATTEMPT_OUTCOME_RETRYING: WebhookAttemptOutcome
WEBHOOK_ATTEMPT_OUTCOME_FAILED: WebhookAttemptOutcome
WEBHOOK_ATTEMPT_OUTCOME_ENDPOINT_DISABLED: WebhookAttemptOutcome

class WebhookEndpoint(_message.Message):
    __slots__ = ("endpoint_id", "url", "description", "event_types", "state", "disabled_reason", "disabled_at", "created_at", "updated_at", "failing_since", "previous_secret_expires_at")
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DISABLED_REASON_FIELD_NUMBER: _ClassVar[int]
    DISABLED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    FAILING_SINCE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SECRET_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    endpoint_id: str
    url: str
    description: str
    event_types: _containers.RepeatedScalarFieldContainer[_event_pb2.EventType]
    state: WebhookEndpointState
    disabled_reason: str
    disabled_at: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    failing_since: _timestamp_pb2.Timestamp
    previous_secret_expires_at: _timestamp_pb2.Timestamp
    def __init__(self, endpoint_id: _Optional[str] = ..., url: _Optional[str] = ..., description: _Optional[str] = ..., event_types: _Optional[_Iterable[_Union[_event_pb2.EventType, str]]] = ..., state: _Optional[_Union[WebhookEndpointState, str]] = ..., disabled_reason: _Optional[str] = ..., disabled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., failing_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., previous_secret_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WebhookAttempt(_message.Message):
    __slots__ = ("webhook_id", "event_type", "message_id", "attempt", "attempted_at", "status_code", "latency_ms", "error", "outcome")
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    event_type: str
    message_id: str
    attempt: int
    attempted_at: _timestamp_pb2.Timestamp
    status_code: int
    latency_ms: int
    error: str
    outcome: WebhookAttemptOutcome
    def __init__(self, webhook_id: _Optional[str] = ..., event_type: _Optional[str] = ..., message_id: _Optional[str] = ..., attempt: _Optional[int] = ..., attempted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status_code: _Optional[int] = ..., latency_ms: _Optional[int] = ..., error: _Optional[str] = ..., outcome: _Optional[_Union[WebhookAttemptOutcome, str]] = ...) -> None: ...
