import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from postwire.v1 import suppression_pb2 as _suppression_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListSuppressionsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "kind", "created_after", "created_before", "address_prefix")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_PREFIX_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    kind: _suppression_pb2.SuppressionKind
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    address_prefix: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., kind: _Optional[_Union[_suppression_pb2.SuppressionKind, str]] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., address_prefix: _Optional[str] = ...) -> None: ...

class ListSuppressionsResponse(_message.Message):
    __slots__ = ("suppressions", "next_page_token")
    SUPPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    suppressions: _containers.RepeatedCompositeFieldContainer[_suppression_pb2.Suppression]
    next_page_token: str
    def __init__(self, suppressions: _Optional[_Iterable[_Union[_suppression_pb2.Suppression, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetSuppressionRequest(_message.Message):
    __slots__ = ("address",)
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    address: str
    def __init__(self, address: _Optional[str] = ...) -> None: ...

class GetSuppressionResponse(_message.Message):
    __slots__ = ("suppression",)
    SUPPRESSION_FIELD_NUMBER: _ClassVar[int]
    suppression: _suppression_pb2.Suppression
    def __init__(self, suppression: _Optional[_Union[_suppression_pb2.Suppression, _Mapping]] = ...) -> None: ...

class AddSuppressionRequest(_message.Message):
    __slots__ = ("address", "reason")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    address: str
    reason: str
    def __init__(self, address: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AddSuppressionResponse(_message.Message):
    __slots__ = ("suppression", "created")
    SUPPRESSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    suppression: _suppression_pb2.Suppression
    created: bool
    def __init__(self, suppression: _Optional[_Union[_suppression_pb2.Suppression, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class RemoveSuppressionRequest(_message.Message):
    __slots__ = ("address",)
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    address: str
    def __init__(self, address: _Optional[str] = ...) -> None: ...

class RemoveSuppressionResponse(_message.Message):
    __slots__ = ("suppression",)
    SUPPRESSION_FIELD_NUMBER: _ClassVar[int]
    suppression: _suppression_pb2.Suppression
    def __init__(self, suppression: _Optional[_Union[_suppression_pb2.Suppression, _Mapping]] = ...) -> None: ...

class BatchAddSuppressionsRequest(_message.Message):
    __slots__ = ("addresses", "reason")
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    addresses: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    def __init__(self, addresses: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ...) -> None: ...

class BatchAddSuppressionsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SuppressionResult]
    def __init__(self, results: _Optional[_Iterable[_Union[SuppressionResult, _Mapping]]] = ...) -> None: ...

class BatchRemoveSuppressionsRequest(_message.Message):
    __slots__ = ("addresses",)
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    addresses: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, addresses: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchRemoveSuppressionsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SuppressionResult]
    def __init__(self, results: _Optional[_Iterable[_Union[SuppressionResult, _Mapping]]] = ...) -> None: ...

class SuppressionResult(_message.Message):
    __slots__ = ("address", "suppression", "error", "created")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    address: str
    suppression: _suppression_pb2.Suppression
    error: SuppressionError
    created: bool
    def __init__(self, address: _Optional[str] = ..., suppression: _Optional[_Union[_suppression_pb2.Suppression, _Mapping]] = ..., error: _Optional[_Union[SuppressionError, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class SuppressionError(_message.Message):
    __slots__ = ("code", "message", "field")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    field: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...
