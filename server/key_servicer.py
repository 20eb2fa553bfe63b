"""KeyService servicer: manage the calling account's API keys (admin scope)."""

from __future__ import annotations

import grpc

from core.errors import FieldViolation, InvalidArgument
from core.keys.manager import KeyManager, KeyOptions
from core.keys.store import KeyRecord
from postwire.v1 import api_key_pb2, key_service_pb2_grpc
from postwire.v1 import key_service_pb2 as pb
from server.convert import datetime_or_none, timestamp
from server.interceptors import current_principal

_SCOPE_NAMES = {api_key_pb2.SCOPE_SEND: "send", api_key_pb2.SCOPE_READ: "read",
                api_key_pb2.SCOPE_EVENTS: "events", api_key_pb2.SCOPE_ADMIN: "admin"}
_SCOPE_VALUES = {name: value for value, name in _SCOPE_NAMES.items()}
_KINDS = {api_key_pb2.API_KEY_KIND_UNSPECIFIED: "live", api_key_pb2.API_KEY_KIND_LIVE: "live",
          api_key_pb2.API_KEY_KIND_TEST: "test"}


def key_to_proto(record: KeyRecord) -> api_key_pb2.ApiKey:
    return api_key_pb2.ApiKey(
        key_id=record.public_id,
        name=record.name,
        kind=api_key_pb2.API_KEY_KIND_TEST if record.kind == "test" else api_key_pb2.API_KEY_KIND_LIVE,
        scopes=sorted(_SCOPE_VALUES[s] for s in record.scopes if s in _SCOPE_VALUES),
        prefix=record.prefix,
        created_at=timestamp(record.created_at),
        expires_at=timestamp(record.expires_at),
        revoked_at=timestamp(record.revoked_at),
        send_per_minute=record.send_per_minute or 0,
        read_per_minute=record.read_per_minute or 0,
        max_streams=record.max_streams or 0,
    )


def _options(request: pb.CreateApiKeyRequest) -> KeyOptions:
    violations = []
    scopes = set()
    for index, value in enumerate(request.scopes):
        if value not in _SCOPE_NAMES:
            violations.append(FieldViolation(f"scopes[{index}]", "unknown scope"))
        else:
            scopes.add(_SCOPE_NAMES[value])
    if request.kind not in _KINDS:
        violations.append(FieldViolation("kind", "unknown kind"))
    if violations:
        raise InvalidArgument(violations)
    return KeyOptions(
        name=request.name,
        kind=_KINDS[request.kind],
        scopes=frozenset(scopes),
        expires_at=datetime_or_none(request, "expires_at"),
        send_per_minute=request.send_per_minute or None,
        read_per_minute=request.read_per_minute or None,
        max_streams=request.max_streams or None,
    )


class KeyServicer(key_service_pb2_grpc.KeyServiceServicer):
    def __init__(self, keys: KeyManager) -> None:
        self.keys = keys

    async def CreateApiKey(self, request: pb.CreateApiKeyRequest, context: grpc.aio.ServicerContext) -> pb.CreateApiKeyResponse:
        record, secret = await self.keys.create(current_principal.get().account_id, _options(request))
        return pb.CreateApiKeyResponse(api_key=key_to_proto(record), secret=secret)

    async def ListApiKeys(self, request: pb.ListApiKeysRequest, context: grpc.aio.ServicerContext) -> pb.ListApiKeysResponse:
        records = await self.keys.list(current_principal.get().account_id)
        return pb.ListApiKeysResponse(api_keys=[key_to_proto(r) for r in records])

    async def RevokeApiKey(self, request: pb.RevokeApiKeyRequest, context: grpc.aio.ServicerContext) -> pb.RevokeApiKeyResponse:
        record = await self.keys.revoke(current_principal.get().account_id, request.key_id)
        return pb.RevokeApiKeyResponse(api_key=key_to_proto(record))
