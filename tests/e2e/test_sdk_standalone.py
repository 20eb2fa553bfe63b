"""The client SDK installs and works without the service.

A fresh virtual environment gets only clients/python (postwire_client, the generated
stubs, the `postwire` command) and what it declares, at the versions of
requirements.lock. There, the service's packages cannot be imported, the `postwire`
command offers the calling side only, and it sends through the real test stack.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from postwire.v1 import email_pb2
from tests.conftest import Stack
from tests.e2e.test_full_stack import wait_status

REPO = Path(__file__).resolve().parents[2]
SERVICE_PACKAGES = ("core", "server", "workers", "postwire_service", "sqlalchemy", "dramatiq", "pydantic_settings")


@pytest.fixture(scope="module")
def sdk_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A virtual environment holding the SDK and nothing of the service: its bin/."""
    home = tmp_path_factory.mktemp("sdk-venv")
    venv.EnvBuilder(with_pip=True).create(home)
    bin_dir = home / "bin"
    source = home / "src"  # a copy (the stubs link followed): building writes no files here
    shutil.copytree(REPO / "clients" / "python", source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-c", str(REPO / "requirements.lock"), str(source)],
        check=True, capture_output=True, timeout=300, cwd=home,
    )
    yield bin_dir


def _run(bin_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(bin_dir.parent), **(env or {})}
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, cwd=bin_dir.parent, env=clean)


def test_the_sdk_imports_without_any_of_the_service(sdk_env: Path) -> None:
    probe = (
        "import importlib.util, postwire_client\n"
        "from postwire_client import AsyncClient, Client, PostwireError\n"
        "from postwire.v1 import email_service_pb2_grpc\n"
        f"print([m for m in {SERVICE_PACKAGES!r} if importlib.util.find_spec(m)])\n"
        "print(postwire_client.__file__)"
    )
    result = _run(sdk_env, str(sdk_env / "python"), "-c", probe)
    assert result.returncode == 0, result.stderr
    found, location = result.stdout.splitlines()
    assert found == "[]", f"the SDK's environment holds service packages: {found}"
    assert str(sdk_env.parent) in location  # installed there, not this checkout
    deps = _run(sdk_env, str(sdk_env / "python"), "-m", "pip", "list", "--format=freeze").stdout.lower()
    assert "sqlalchemy" not in deps and "dramatiq" not in deps and "aiosmtplib" not in deps


def test_the_postwire_command_offers_the_calling_side_only(sdk_env: Path) -> None:
    result = _run(sdk_env, str(sdk_env / "postwire"), "--help")
    assert result.returncode == 0, result.stderr
    for command in ("send", "status", "cancel", "events"):
        assert command in result.stdout
    for command in ("server", "worker", "scheduler", "migrate", "keys"):
        assert f"{command}," not in result.stdout and f",{command}" not in result.stdout
    refused = _run(sdk_env, str(sdk_env / "postwire"), "server")
    assert refused.returncode != 0 and "invalid choice" in refused.stderr


def test_the_standalone_cli_sends_through_a_real_server(sdk_env: Path, stack: Stack) -> None:
    env = {"POSTWIRE_ADDRESS": stack.address, "POSTWIRE_API_KEY": stack.key_a}
    sent = _run(sdk_env, str(sdk_env / "postwire"), "send", "--from", "sdk@example.com", "--to",
                "standalone@example.com", "--subject", "from the SDK alone", "--text", "hello", env=env)
    assert sent.returncode == 0, sent.stderr
    message_id = sent.stdout.strip()
    with stack.client() as client:
        assert wait_status(client, message_id, {email_pb2.EMAIL_STATUS_SENT}).status == email_pb2.EMAIL_STATUS_SENT
    status = _run(sdk_env, str(sdk_env / "postwire"), "status", message_id, env=env)
    assert status.returncode == 0 and "SENT" in status.stdout, status.stderr
    assert sys.executable not in status.stdout
