from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AddressVerdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ADDRESS_VERDICT_UNSPECIFIED: _ClassVar[AddressVerdict]
    ADDRESS_VERDICT_DELIVERABLE: _ClassVar[AddressVerdict]
    ADDRESS_VERDICT_UNDELIVERABLE: _ClassVar[AddressVerdict]
    ADDRESS_VERDICT_RISKY: _ClassVar[AddressVerdict]
    ADDRESS_VERDICT_UNKNOWN: _ClassVar[AddressVerdict]

class MailDomainStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MAIL_DOMAIN_STATUS_UNSPECIFIED: _ClassVar[MailDomainStatus]
    MAIL_DOMAIN_STATUS_MX: _ClassVar[MailDomainStatus]
    MAIL_DOMAIN_STATUS_A_FALLBACK: _ClassVar[MailDomainStatus]
    MAIL_DOMAIN_STATUS_NULL_MX: _ClassVar[MailDomainStatus]
    MAIL_DOMAIN_STATUS_NO_SUCH_DOMAIN: _ClassVar[MailDomainStatus]
    MAIL_DOMAIN_STATUS_NO_MAIL_HOST: _ClassVar[MailDomainStatus]
    MAIL_DOMAIN_STATUS_LOOKUP_FAILED: _ClassVar[MailDomainStatus]
    MAIL_DOMAIN_STATUS_NOT_CHECKED: _ClassVar[MailDomainStatus]
ADDRESS_VERDICT_UNSPECIFIED: AddressVerdict
ADDRESS_VERDICT_DELIVERABLE: AddressVerdict
ADDRESS_VERDICT_UNDELIVERABLE: AddressVerdict
ADDRESS_VERDICT_RISKY: AddressVerdict
ADDRESS_VERDICT_UNKNOWN: AddressVerdict
MAIL_DOMAIN_STATUS_UNSPECIFIED: MailDomainStatus
MAIL_DOMAIN_STATUS_MX: MailDomainStatus
MAIL_DOMAIN_STATUS_A_FALLBACK: MailDomainStatus
MAIL_DOMAIN_STATUS_NULL_MX: MailDomainStatus
MAIL_DOMAIN_STATUS_NO_SUCH_DOMAIN: MailDomainStatus
MAIL_DOMAIN_STATUS_NO_MAIL_HOST: MailDomainStatus
MAIL_DOMAIN_STATUS_LOOKUP_FAILED: MailDomainStatus
MAIL_DOMAIN_STATUS_NOT_CHECKED: MailDomainStatus

class AddressCheck(_message.Message):
    __slots__ = ("address", "normalized", "verdict", "reason", "syntax_valid", "domain_status", "mail_hosts", "suppressed", "suppression_reason", "role", "disposable")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SYNTAX_VALID_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_STATUS_FIELD_NUMBER: _ClassVar[int]
    MAIL_HOSTS_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSION_REASON_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    DISPOSABLE_FIELD_NUMBER: _ClassVar[int]
    address: str
    normalized: str
    verdict: AddressVerdict
    reason: str
    syntax_valid: bool
    domain_status: MailDomainStatus
    mail_hosts: _containers.RepeatedScalarFieldContainer[str]
    suppressed: bool
    suppression_reason: str
    role: bool
    disposable: bool
    def __init__(self, address: _Optional[str] = ..., normalized: _Optional[str] = ..., verdict: _Optional[_Union[AddressVerdict, str]] = ..., reason: _Optional[str] = ..., syntax_valid: _Optional[bool] = ..., domain_status: _Optional[_Union[MailDomainStatus, str]] = ..., mail_hosts: _Optional[_Iterable[str]] = ..., suppressed: _Optional[bool] = ..., suppression_reason: _Optional[str] = ..., role: _Optional[bool] = ..., disposable: _Optional[bool] = ...) -> None: ...

class ValidateAddressRequest(_message.Message):
    __slots__ = ("address",)
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    address: str
    def __init__(self, address: _Optional[str] = ...) -> None: ...

class ValidateAddressResponse(_message.Message):
    __slots__ = ("check",)
    CHECK_FIELD_NUMBER: _ClassVar[int]
    check: AddressCheck
    def __init__(self, check: _Optional[_Union[AddressCheck, _Mapping]] = ...) -> None: ...

class ValidateAddressesRequest(_message.Message):
    __slots__ = ("addresses",)
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    addresses: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, addresses: _Optional[_Iterable[str]] = ...) -> None: ...

class ValidateAddressesResponse(_message.Message):
    __slots__ = ("checks",)
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    checks: _containers.RepeatedCompositeFieldContainer[AddressCheck]
    def __init__(self, checks: _Optional[_Iterable[_Union[AddressCheck, _Mapping]]] = ...) -> None: ...
