"""The DomainService and AddressService calls of `Client` and `AsyncClient` (mixins).

Retries follow the EmailService calls: every call is retried on UNAVAILABLE except
`rotate_dkim_key`, which would make a second key if the first attempt went through
(the server then refuses it). `create_domain` and `delete_domain` are retried, and a
retry that finds the work already done (ALREADY_EXISTS, NOT_FOUND after a failed
attempt) counts as success, as `cancel_scheduled` does.

    client.create_domain("example.com", dkim_algorithms=["rsa", "ed25519"])
    for check in client.validate_addresses(["ada@example.com", "bob@example.org"]).checks: ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from postwire.v1 import address_service_pb2 as apb
from postwire.v1 import address_service_pb2_grpc, domain_pb2, domain_service_pb2_grpc
from postwire.v1 import domain_service_pb2 as dpb
from postwire_client.errors import AlreadyExists, NotFound
from postwire_client.paging import every, every_async

T = TypeVar("T")

# Friendly names accepted wherever a DKIM algorithm is asked for (beside the enum values).
_ALGORITHM_NAMES = {
    "rsa": domain_pb2.DKIM_ALGORITHM_RSA_SHA256,
    "rsa-sha256": domain_pb2.DKIM_ALGORITHM_RSA_SHA256,
    "ed25519": domain_pb2.DKIM_ALGORITHM_ED25519_SHA256,
    "ed25519-sha256": domain_pb2.DKIM_ALGORITHM_ED25519_SHA256,
}
RSA = domain_pb2.DKIM_ALGORITHM_RSA_SHA256
ED25519 = domain_pb2.DKIM_ALGORITHM_ED25519_SHA256


def dkim_algorithm(value: int | str) -> int:
    """A `DkimAlgorithm` value from itself, its name (`DKIM_ALGORITHM_ED25519_SHA256`)
    or a short name (`rsa`, `ed25519`, `rsa-sha256`, `ed25519-sha256`); ValueError
    otherwise."""
    if isinstance(value, int):
        return value
    short = _ALGORITHM_NAMES.get(value.strip().lower())
    if short is not None:
        return short
    try:
        return domain_pb2.DkimAlgorithm.Value(value.strip().upper())
    except ValueError:
        raise ValueError(f"unknown DKIM algorithm {value!r}: use rsa or ed25519") from None


def create_domain_request(name: str, dkim_algorithms: Iterable[int | str] = ()) -> dpb.CreateDomainRequest:
    return dpb.CreateDomainRequest(name=name, dkim_algorithms=[dkim_algorithm(a) for a in dkim_algorithms])


class DomainMethods:
    """Sending domains (DomainService, a key with the `admin` scope) and address checks
    (AddressService, the `read` scope) on the blocking `Client`."""

    domain_stub: domain_service_pb2_grpc.DomainServiceStub
    address_stub: address_service_pb2_grpc.AddressServiceStub

    if TYPE_CHECKING:
        def _unary(self, name: str, rpc: Callable[..., T], request: Any, timeout: float | None, *,
                   retry_deadline_exceeded: bool = False, retry: bool = True) -> T: ...

    def _add_domain_stubs(self, channel: Any) -> None:
        self.domain_stub = domain_service_pb2_grpc.DomainServiceStub(channel)
        self.address_stub = address_service_pb2_grpc.AddressServiceStub(channel)

    def create_domain(self, name: str, *, dkim_algorithms: Iterable[int | str] = (),
                      timeout: float | None = None) -> dpb.CreateDomainResponse:
        """Add a sending domain; the answer lists the DNS records to publish. One DKIM key
        per algorithm (`rsa`, `ed25519` or `DkimAlgorithm` values; RSA when empty)."""
        request = create_domain_request(name, dkim_algorithms)
        try:
            return self._unary("CreateDomain", self.domain_stub.CreateDomain, request, timeout)
        except AlreadyExists as exc:
            if exc.attempts > 1:  # the attempt that failed had created it
                return dpb.CreateDomainResponse(domain=self.get_domain(name).domain)
            raise

    def get_domain(self, domain_id: str, *, timeout: float | None = None) -> dpb.GetDomainResponse:
        """One domain (by id `dom_...` or name) with its records and keys."""
        request = dpb.GetDomainRequest(domain_id=domain_id)
        return self._unary("GetDomain", self.domain_stub.GetDomain, request, timeout)

    def list_domains(self, *, page_size: int = 0, page_token: str = "",
                     timeout: float | None = None) -> dpb.ListDomainsResponse:
        """One page of the account's domains, by name (`iter_domains` follows the pages)."""
        request = dpb.ListDomainsRequest(page_size=page_size, page_token=page_token)
        return self._unary("ListDomains", self.domain_stub.ListDomains, request, timeout)

    def iter_domains(self, *, page_size: int = 0, timeout: float | None = None) -> Iterator[domain_pb2.Domain]:
        """Every domain of the account, by name, fetching page after page."""
        return every(lambda token: self.list_domains(page_size=page_size, page_token=token, timeout=timeout), "domains")

    def verify_domain(self, domain_id: str, *, timeout: float | None = None) -> dpb.VerifyDomainResponse:
        """Look the domain's records up in DNS now; the answer says, per record, what was found."""
        request = dpb.VerifyDomainRequest(domain_id=domain_id)
        return self._unary("VerifyDomain", self.domain_stub.VerifyDomain, request, timeout)

    def delete_domain(self, domain_id: str, *, timeout: float | None = None) -> dpb.DeleteDomainResponse:
        """Remove the domain and its keys: mail from it is refused afterwards."""
        request = dpb.DeleteDomainRequest(domain_id=domain_id)
        try:
            return self._unary("DeleteDomain", self.domain_stub.DeleteDomain, request, timeout)
        except NotFound as exc:
            if exc.attempts > 1:  # the attempt that failed had deleted it
                return dpb.DeleteDomainResponse()
            raise

    def rotate_dkim_key(self, domain_id: str, *, algorithm: int | str = RSA,
                        timeout: float | None = None) -> dpb.RotateDkimKeyResponse:
        """A new DKIM key (a new selector) for `algorithm`; it signs once `verify_domain`
        finds its record, and the key it replaces retires. Not retried."""
        request = dpb.RotateDkimKeyRequest(domain_id=domain_id, algorithm=dkim_algorithm(algorithm))
        return self._unary("RotateDkimKey", self.domain_stub.RotateDkimKey, request, timeout, retry=False)

    def validate_address(self, address: str, *, timeout: float | None = None) -> apb.ValidateAddressResponse:
        """Check one address (syntax, the domain's mail hosts, the suppression list); no SMTP probe."""
        request = apb.ValidateAddressRequest(address=address)
        return self._unary("ValidateAddress", self.address_stub.ValidateAddress, request, timeout)

    def validate_addresses(self, addresses: Iterable[str], *,
                           timeout: float | None = None) -> apb.ValidateAddressesResponse:
        """Check up to 1,000 addresses; the checks come back in the same order."""
        request = apb.ValidateAddressesRequest(addresses=list(addresses))
        return self._unary("ValidateAddresses", self.address_stub.ValidateAddresses, request, timeout)


class AsyncDomainMethods:
    """The calls of `DomainMethods` on `AsyncClient`, with the same retries."""

    domain_stub: domain_service_pb2_grpc.DomainServiceStub
    address_stub: address_service_pb2_grpc.AddressServiceStub

    if TYPE_CHECKING:
        async def _unary(self, name: str, rpc: Callable[..., Awaitable[T]], request: Any, timeout: float | None, *,
                         retry_deadline_exceeded: bool = False, retry: bool = True) -> T: ...

    def _add_domain_stubs(self, channel: Any) -> None:
        self.domain_stub = domain_service_pb2_grpc.DomainServiceStub(channel)
        self.address_stub = address_service_pb2_grpc.AddressServiceStub(channel)

    async def create_domain(self, name: str, *, dkim_algorithms: Iterable[int | str] = (),
                            timeout: float | None = None) -> dpb.CreateDomainResponse:
        """As `Client.create_domain`."""
        request = create_domain_request(name, dkim_algorithms)
        try:
            return await self._unary("CreateDomain", self.domain_stub.CreateDomain, request, timeout)
        except AlreadyExists as exc:
            if exc.attempts > 1:
                return dpb.CreateDomainResponse(domain=(await self.get_domain(name)).domain)
            raise

    async def get_domain(self, domain_id: str, *, timeout: float | None = None) -> dpb.GetDomainResponse:
        request = dpb.GetDomainRequest(domain_id=domain_id)
        return await self._unary("GetDomain", self.domain_stub.GetDomain, request, timeout)

    async def list_domains(self, *, page_size: int = 0, page_token: str = "",
                           timeout: float | None = None) -> dpb.ListDomainsResponse:
        request = dpb.ListDomainsRequest(page_size=page_size, page_token=page_token)
        return await self._unary("ListDomains", self.domain_stub.ListDomains, request, timeout)

    async def iter_domains(self, *, page_size: int = 0,
                           timeout: float | None = None) -> AsyncIterator[domain_pb2.Domain]:
        """Every domain of the account, by name, fetching page after page."""
        async for domain in every_async(
                lambda token: self.list_domains(page_size=page_size, page_token=token, timeout=timeout), "domains"):
            yield domain

    async def verify_domain(self, domain_id: str, *, timeout: float | None = None) -> dpb.VerifyDomainResponse:
        request = dpb.VerifyDomainRequest(domain_id=domain_id)
        return await self._unary("VerifyDomain", self.domain_stub.VerifyDomain, request, timeout)

    async def delete_domain(self, domain_id: str, *, timeout: float | None = None) -> dpb.DeleteDomainResponse:
        """As `Client.delete_domain`."""
        request = dpb.DeleteDomainRequest(domain_id=domain_id)
        try:
            return await self._unary("DeleteDomain", self.domain_stub.DeleteDomain, request, timeout)
        except NotFound as exc:
            if exc.attempts > 1:
                return dpb.DeleteDomainResponse()
            raise

    async def rotate_dkim_key(self, domain_id: str, *, algorithm: int | str = RSA,
                              timeout: float | None = None) -> dpb.RotateDkimKeyResponse:
        """As `Client.rotate_dkim_key`: not retried."""
        request = dpb.RotateDkimKeyRequest(domain_id=domain_id, algorithm=dkim_algorithm(algorithm))
        return await self._unary("RotateDkimKey", self.domain_stub.RotateDkimKey, request, timeout, retry=False)

    async def validate_address(self, address: str, *, timeout: float | None = None) -> apb.ValidateAddressResponse:
        request = apb.ValidateAddressRequest(address=address)
        return await self._unary("ValidateAddress", self.address_stub.ValidateAddress, request, timeout)

    async def validate_addresses(self, addresses: Iterable[str], *,
                                 timeout: float | None = None) -> apb.ValidateAddressesResponse:
        request = apb.ValidateAddressesRequest(addresses=list(addresses))
        return await self._unary("ValidateAddresses", self.address_stub.ValidateAddresses, request, timeout)
