"""Shared pieces of the hostile-input suite: keys with every scope and budgets that
fuzzing cannot exhaust, one account per module so nothing leaks into other tests."""

from __future__ import annotations

import secrets

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import Stack
from tests.e2e.test_keys_and_limits import create_key

ALL_SCOPES = ("--scope", "send", "--scope", "read", "--scope", "events", "--scope", "admin")
UNLIMITED = ("--send-per-minute", "1000000", "--read-per-minute", "1000000", "--max-streams", "1000")


def fuzz_key(stack: Stack, account: str | None = None) -> str:
    """A test-mode key with every scope and per-key budgets fuzzing cannot exhaust,
    on an account of its own (account budgets are per account)."""
    account = account or f"fuzz-{secrets.token_hex(3)}"
    return create_key(stack, account, "--kind", "test", *ALL_SCOPES, *UNLIMITED)


def assert_healthy(address: str) -> None:
    """The server answers its health check SERVING."""
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def fuzz_account_key(stack: Stack) -> str:
    return fuzz_key(stack)
