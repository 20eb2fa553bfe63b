"""`postwire check` against the real services, and the start-up refusal of a weak
POSTWIRE_SECRET_KEY by server, worker and scheduler."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from postwire_service.check import secret_key_problem
from tests.conftest import Stack
from tests.support.ports import free_port
from tests.support.processes import POSTWIRE, REPO, Process, base_env, wait_serving
from tests.support.proxy import Proxy
from tests.support.smtp import SmtpServer
from tests.support.stack import fresh_database, stack_env


def check(env: dict[str, str], *args: str) -> tuple[int, dict[str, dict[str, str]], str]:
    """Exit status, the JSON report's checks by name, and the plain-text report."""
    as_json = subprocess.run([POSTWIRE, "check", "--json", "--timeout", "3", *args], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=120)
    report = json.loads(as_json.stdout)
    plain = subprocess.run([POSTWIRE, "check", "--timeout", "3", *args], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    assert plain.returncode == as_json.returncode
    assert report["ok"] == (as_json.returncode == 0)
    return as_json.returncode, {c["name"]: c for c in report["checks"]}, plain.stdout


def test_a_healthy_stack_passes_every_check(stack: Stack) -> None:
    code, checks, plain = check(stack.env, "--server", stack.address)
    assert code == 0, plain
    assert {c["status"] for c in checks.values()} == {"ok"}, plain
    relays = [json.loads(stack.env["POSTWIRE_SMTP_RELAYS"])[i]["port"] for i in (0, 1)]
    assert list(checks) == [
        "secret key", "postgresql", "rabbitmq", "redis",
        f"smtp relay 127.0.0.1:{relays[0]}", f"smtp relay 127.0.0.1:{relays[1]}", f"server {stack.address}",
    ]
    assert "schema at head" in checks["postgresql"]["detail"]
    prefix = stack.env["POSTWIRE_QUEUE_PREFIX"]
    assert f"{prefix}.deliver:" in checks["rabbitmq"]["detail"] and f"{prefix}.webhooks:" in checks["rabbitmq"]["detail"]
    assert "2 consumers" in checks["rabbitmq"]["detail"]  # the stack's two workers
    assert checks[f"server {stack.address}"]["detail"] == "SERVING"
    lines = plain.splitlines()
    assert len(lines) == 7 and all(line.startswith("ok    ") for line in lines)


def test_every_unreachable_dependency_fails_its_own_check(stack: Stack) -> None:
    dead = free_port()
    env = {
        **stack.env,
        "POSTWIRE_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{dead}/%2F",
        "POSTWIRE_REDIS_URL": f"redis://127.0.0.1:{dead}/0",
        "POSTWIRE_SMTP_RELAYS": json.dumps([{"host": "127.0.0.1", "port": dead}]),
    }
    env["POSTWIRE_DATABASE_URL"] = env["POSTWIRE_DATABASE_URL"].replace(":5432/", f":{dead}/")
    code, checks, plain = check(env, "--server", f"127.0.0.1:{dead}")
    assert code == 1
    assert checks["secret key"]["status"] == "ok"
    for name in ("postgresql", "rabbitmq", "redis", f"smtp relay 127.0.0.1:{dead}", f"server 127.0.0.1:{dead}"):
        assert checks[name]["status"] == "fail", plain
        assert checks[name]["detail"], name
    assert "refused" in checks["postgresql"]["detail"].lower()
    assert "UNAVAILABLE" in checks[f"server 127.0.0.1:{dead}"]["detail"]
    assert [line.split()[0] for line in plain.splitlines()] == ["ok"] + ["FAIL"] * 5


def test_schema_behind_head_and_undeclared_queues_fail_with_what_to_do(stack: Stack) -> None:
    with fresh_database("postwire_check") as url:
        env = {**stack.env, "POSTWIRE_DATABASE_URL": url, "POSTWIRE_QUEUE_PREFIX": f"nobody_{free_port()}"}
        code, checks, _ = check(env)
        assert code == 1
        assert checks["postgresql"]["status"] == "fail"
        assert "no schema: run `postwire migrate`" in checks["postgresql"]["detail"]
        assert checks["rabbitmq"]["status"] == "fail"
        assert "deliver is not declared" in checks["rabbitmq"]["detail"]
        subprocess.run([POSTWIRE, "migrate"], env=env, cwd=REPO, check=True, capture_output=True, timeout=120)
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("UPDATE alembic_version SET version_num = '0004'")
        _, checks, _ = check(env)
        assert checks["postgresql"]["status"] == "fail"
        assert "schema at 0004" in checks["postgresql"]["detail"] and "postwire migrate" in checks["postgresql"]["detail"]


def test_a_not_serving_server_and_a_relay_without_starttls_fail(stack: Stack, tmp_path: Path) -> None:
    db_port = urlsplit(stack.env["POSTWIRE_DATABASE_URL"]).port or 5432
    with Proxy(db_port) as proxy, SmtpServer() as plain_relay:
        port = free_port()
        env = {**stack.env, "POSTWIRE_GRPC_PORT": str(port), "POSTWIRE_HEALTH_CHECK_INTERVAL": "0.2",
               "POSTWIRE_DATABASE_URL": stack.env["POSTWIRE_DATABASE_URL"].replace(":5432/", f":{proxy.port}/")}
        server = Process(["server"], env, tmp_path / "server.log")
        try:
            wait_serving(f"127.0.0.1:{port}", server)
            proxy.down()
            relays = json.dumps([{"host": "127.0.0.1", "port": plain_relay.port, "tls": "starttls"}])
            code, checks, _ = check({**stack.env, "POSTWIRE_SMTP_RELAYS": relays}, "--server", f"127.0.0.1:{port}")
        finally:
            server.stop()
    assert code == 1
    server_check = checks[f"server 127.0.0.1:{port}"]
    assert server_check["status"] == "fail" and "overall NOT_SERVING" in server_check["detail"]
    relay = checks[f"smtp relay 127.0.0.1:{plain_relay.port}"]
    assert relay["status"] == "fail" and "STARTTLS" in relay["detail"].upper()
    assert checks["postgresql"]["status"] == "ok"  # check itself used the real port


def test_missing_settings_fail_cleanly() -> None:
    code, checks, plain = check(base_env())
    assert code == 1 and checks == {
        "settings": {"name": "settings", "status": "fail", "detail": "POSTWIRE_SECRET_KEY: Field required"}
    }
    assert "Traceback" not in plain


# The secret key -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret, reason",
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("change-me", "placeholder"),
        ("CHANGE_ME_CHANGE_ME_CHANGE_ME_CHANGE_ME_42", "placeholder"),
        ("replace-me-with-a-long-random-value-please", "placeholder"),
        ("s3cr3t-but-short", "too short"),
        ("a" * 64, "not random"),
        ("0123456701234567012345670123456701234567", "not random"),
    ],
)
def test_weak_secret_keys_are_named_with_the_reason(secret: str, reason: str) -> None:
    problem = secret_key_problem(secret)
    assert problem is not None and reason in problem


def test_generated_secret_keys_are_strong() -> None:
    import secrets

    for _ in range(200):
        assert secret_key_problem(secrets.token_hex(32)) is None  # openssl rand -hex 32
        assert secret_key_problem(secrets.token_urlsafe(32)) is None  # what the test stacks use
        assert secret_key_problem(secrets.token_hex(16)) is None  # 32 characters: the minimum


@pytest.mark.parametrize("command", ["server", "worker", "scheduler"])
@pytest.mark.parametrize("secret", ["change-me", "short", ""])
def test_long_running_processes_refuse_a_weak_secret(command: str, secret: str) -> None:
    env = {**base_env(), "POSTWIRE_SECRET_KEY": secret, "POSTWIRE_GRPC_PORT": str(free_port())}
    result = subprocess.run([POSTWIRE, command], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "POSTWIRE_SECRET_KEY" in result.stderr and "openssl rand -hex 32" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["server", "worker", "scheduler"])
def test_long_running_processes_name_a_missing_secret(command: str) -> None:
    result = subprocess.run([POSTWIRE, command], env=base_env(), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "error: POSTWIRE_SECRET_KEY: Field required" in result.stderr and "Traceback" not in result.stderr


def test_stack_env_and_the_dev_mode_use_strong_secrets(tmp_path: Path) -> None:
    env = stack_env(database_url="x", queue_prefix="p", grpc_port=1, smtp_relays="[]")
    assert secret_key_problem(env["POSTWIRE_SECRET_KEY"]) is None
    from postwire_service.embedded import dev_settings

    assert secret_key_problem(dev_settings(tmp_path / "dev").secret_key.get_secret_value()) is None


def test_direct_to_mx_checks_the_resolver_instead_of_relays(stack: Stack) -> None:
    env = {**stack.env, "POSTWIRE_DELIVERY_ROUTE": "mx"}
    code, checks, plain = check(env)
    assert code == 0, plain
    assert "dns" in checks and not any(name.startswith("smtp relay") for name in checks)
    assert "answers" in checks["dns"]["detail"] and "EHLO as mta.postwire.test" in checks["dns"]["detail"]
    dead = {**env, "POSTWIRE_DNS_PORT": str(free_port()), "POSTWIRE_DNS_TIMEOUT": "0.5"}
    code, checks, plain = check(dead)
    assert code == 1 and checks["dns"]["status"] == "fail", plain
    assert "4.4.3" in checks["dns"]["detail"]
