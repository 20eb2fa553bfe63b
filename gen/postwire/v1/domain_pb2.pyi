import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DomainState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DOMAIN_STATE_UNSPECIFIED: _ClassVar[DomainState]
    DOMAIN_STATE_PENDING: _ClassVar[DomainState]
    DOMAIN_STATE_VERIFIED: _ClassVar[DomainState]
    DOMAIN_STATE_FAILED: _ClassVar[DomainState]

class DnsRecordPurpose(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DNS_RECORD_PURPOSE_UNSPECIFIED: _ClassVar[DnsRecordPurpose]
    DNS_RECORD_PURPOSE_DKIM: _ClassVar[DnsRecordPurpose]
    DNS_RECORD_PURPOSE_SPF: _ClassVar[DnsRecordPurpose]
    DNS_RECORD_PURPOSE_DMARC: _ClassVar[DnsRecordPurpose]
    DNS_RECORD_PURPOSE_RETURN_PATH: _ClassVar[DnsRecordPurpose]

class DnsRecordStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DNS_RECORD_STATUS_UNSPECIFIED: _ClassVar[DnsRecordStatus]
    DNS_RECORD_STATUS_NOT_CHECKED: _ClassVar[DnsRecordStatus]
    DNS_RECORD_STATUS_FOUND: _ClassVar[DnsRecordStatus]
    DNS_RECORD_STATUS_MISSING: _ClassVar[DnsRecordStatus]
    DNS_RECORD_STATUS_DIFFERENT: _ClassVar[DnsRecordStatus]
    DNS_RECORD_STATUS_LOOKUP_FAILED: _ClassVar[DnsRecordStatus]

class DkimAlgorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DKIM_ALGORITHM_UNSPECIFIED: _ClassVar[DkimAlgorithm]
    DKIM_ALGORITHM_RSA_SHA256: _ClassVar[DkimAlgorithm]
    DKIM_ALGORITHM_ED25519_SHA256: _ClassVar[DkimAlgorithm]

class DkimKeyState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DKIM_KEY_STATE_UNSPECIFIED: _ClassVar[DkimKeyState]
    DKIM_KEY_STATE_PENDING: _ClassVar[DkimKeyState]
    DKIM_KEY_STATE_ACTIVE: _ClassVar[DkimKeyState]
    DKIM_KEY_STATE_RETIRED: _ClassVar[DkimKeyState]
DOMAIN_STATE_UNSPECIFIED: DomainState
DOMAIN_STATE_PENDING: DomainState
DOMAIN_STATE_VERIFIED: DomainState
DOMAIN_STATE_FAILED: DomainState
DNS_RECORD_PURPOSE_UNSPECIFIED: DnsRecordPurpose
DNS_RECORD_PURPOSE_DKIM: DnsRecordPurpose
DNS_RECORD_PURPOSE_SPF: DnsRecordPurpose
DNS_RECORD_PURPOSE_DMARC: DnsRecordPurpose
DNS_RECORD_PURPOSE_RETURN_PATH: DnsRecordPurpose
DNS_RECORD_STATUS_UNSPECIFIED: DnsRecordStatus
DNS_RECORD_STATUS_NOT_CHECKED: DnsRecordStatus
DNS_RECORD_STATUS_FOUND: DnsRecordStatus
DNS_RECORD_STATUS_MISSING: DnsRecordStatus
DNS_RECORD_STATUS_DIFFERENT: DnsRecordStatus
DNS_RECORD_STATUS_LOOKUP_FAILED: DnsRecordStatus
DKIM_ALGORITHM_UNSPECIFIED: DkimAlgorithm
DKIM_ALGORITHM_RSA_SHA256: DkimAlgorithm
DKIM_ALGORITHM_ED25519_SHA256: DkimAlgorithm
DKIM_KEY_STATE_UNSPECIFIED: DkimKeyState
DKIM_KEY_STATE_PENDING: DkimKeyState
DKIM_KEY_STATE_ACTIVE: DkimKeyState
DKIM_KEY_STATE_RETIRED: DkimKeyState

class DnsRecord(_message.Message):
    __slots__ = ("purpose", "type", "name", "value", "required", "status", "found", "selector")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    purpose: DnsRecordPurpose
    type: str
    name: str
    value: str
    required: bool
    status: DnsRecordStatus
    found: _containers.RepeatedScalarFieldContainer[str]
    selector: str
    def __init__(self, purpose: _Optional[_Union[DnsRecordPurpose, str]] = ..., type: _Optional[str] = ..., name: _Optional[str] = ..., value: _Optional[str] = ..., required: _Optional[bool] = ..., status: _Optional[_Union[DnsRecordStatus, str]] = ..., found: _Optional[_Iterable[str]] = ..., selector: _Optional[str] = ...) -> None: ...

class DkimKey(_message.Message):
    __slots__ = ("selector", "algorithm", "state", "created_at", "activated_at")
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTIVATED_AT_FIELD_NUMBER: _ClassVar[int]
    selector: str
    algorithm: DkimAlgorithm
    state: DkimKeyState
    created_at: _timestamp_pb2.Timestamp
    activated_at: _timestamp_pb2.Timestamp
    def __init__(self, selector: _Optional[str] = ..., algorithm: _Optional[_Union[DkimAlgorithm, str]] = ..., state: _Optional[_Union[DkimKeyState, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., activated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Domain(_message.Message):
    __slots__ = ("domain_id", "name", "state", "records", "dkim_keys", "created_at", "last_checked_at", "verified_at", "next_check_at", "reason")
    DOMAIN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    DKIM_KEYS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_CHECKED_AT_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_CHECK_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    domain_id: str
    name: str
    state: DomainState
    records: _containers.RepeatedCompositeFieldContainer[DnsRecord]
    dkim_keys: _containers.RepeatedCompositeFieldContainer[DkimKey]
    created_at: _timestamp_pb2.Timestamp
    last_checked_at: _timestamp_pb2.Timestamp
    verified_at: _timestamp_pb2.Timestamp
    next_check_at: _timestamp_pb2.Timestamp
    reason: str
    def __init__(self, domain_id: _Optional[str] = ..., name: _Optional[str] = ..., state: _Optional[_Union[DomainState, str]] = ..., records: _Optional[_Iterable[_Union[DnsRecord, _Mapping]]] = ..., dkim_keys: _Optional[_Iterable[_Union[DkimKey, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_checked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., verified_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_check_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...
