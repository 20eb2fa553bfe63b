from google.api import annotations_pb2 as _annotations_pb2
from postwire.v1 import domain_pb2 as _domain_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateDomainRequest(_message.Message):
    __slots__ = ("name", "dkim_algorithms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DKIM_ALGORITHMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    dkim_algorithms: _containers.RepeatedScalarFieldContainer[_domain_pb2.DkimAlgorithm]
    def __init__(self, name: _Optional[str] = ..., dkim_algorithms: _Optional[_Iterable[_Union[_domain_pb2.DkimAlgorithm, str]]] = ...) -> None: ...

class CreateDomainResponse(_message.Message):
    __slots__ = ("domain",)
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    domain: _domain_pb2.Domain
    def __init__(self, domain: _Optional[_Union[_domain_pb2.Domain, _Mapping]] = ...) -> None: ...

class GetDomainRequest(_message.Message):
    __slots__ = ("domain_id",)
    DOMAIN_ID_FIELD_NUMBER: _ClassVar[int]
    domain_id: str
    def __init__(self, domain_id: _Optional[str] = ...) -> None: ...

class GetDomainResponse(_message.Message):
    __slots__ = ("domain",)
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    domain: _domain_pb2.Domain
    def __init__(self, domain: _Optional[_Union[_domain_pb2.Domain, _Mapping]] = ...) -> None: ...

class ListDomainsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDomainsResponse(_message.Message):
    __slots__ = ("domains", "next_page_token")
    DOMAINS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    domains: _containers.RepeatedCompositeFieldContainer[_domain_pb2.Domain]
    next_page_token: str
    def __init__(self, domains: _Optional[_Iterable[_Union[_domain_pb2.Domain, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class VerifyDomainRequest(_message.Message):
    __slots__ = ("domain_id",)
    DOMAIN_ID_FIELD_NUMBER: _ClassVar[int]
    domain_id: str
    def __init__(self, domain_id: _Optional[str] = ...) -> None: ...

class VerifyDomainResponse(_message.Message):
    __slots__ = ("domain",)
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    domain: _domain_pb2.Domain
    def __init__(self, domain: _Optional[_Union[_domain_pb2.Domain, _Mapping]] = ...) -> None: ...

class DeleteDomainRequest(_message.Message):
    __slots__ = ("domain_id",)
    DOMAIN_ID_FIELD_NUMBER: _ClassVar[int]
    domain_id: str
    def __init__(self, domain_id: _Optional[str] = ...) -> None: ...

class DeleteDomainResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RotateDkimKeyRequest(_message.Message):
    __slots__ = ("domain_id", "algorithm")
    DOMAIN_ID_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    domain_id: str
    algorithm: _domain_pb2.DkimAlgorithm
    def __init__(self, domain_id: _Optional[str] = ..., algorithm: _Optional[_Union[_domain_pb2.DkimAlgorithm, str]] = ...) -> None: ...

class RotateDkimKeyResponse(_message.Message):
    __slots__ = ("domain", "key")
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    domain: _domain_pb2.Domain
    key: _domain_pb2.DkimKey
    def __init__(self, domain: _Optional[_Union[_domain_pb2.Domain, _Mapping]] = ..., key: _Optional[_Union[_domain_pb2.DkimKey, _Mapping]] = ...) -> None: ...
