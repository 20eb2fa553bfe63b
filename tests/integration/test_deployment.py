"""The deployment files (docker-compose.yml, Dockerfile, .env.example, envoy.compose.yaml),
`postwire config` and the generated docs, checked without a Docker engine.

tests/support/compose_spec.json is the Compose Specification JSON schema, vendored
unchanged from the PyPI package docker-compose 1.29.2 (compose/config/compose_spec.json;
Copyright Docker, Inc., Apache License 2.0). It is older than today's Compose, so the
compose file sticks to what it knows (no top-level `name`, no `depends_on.required`).
"""

from __future__ import annotations

import ast
import ipaddress
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from dotenv import dotenv_values
from pydantic import SecretStr

from core.settings import MASK, RelaySettings, Settings
from postwire_client.cli import build_parser
from tests.support.envoy import envoy_binary, unique_base_id
from tests.support.ports import free_port
from tests.support.processes import POSTWIRE, REPO, base_env

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
POSTWIRE_SERVICES = {name: s for name, s in SERVICES.items() if s.get("build") == "."}
ENV_EXAMPLE = {k: v or "" for k, v in dotenv_values(REPO / ".env.example").items()}
DOCKERFILE = (REPO / "Dockerfile").read_text()
ENVOY_COMPOSE = REPO / "envoy" / "envoy.compose.yaml"


# docker-compose.yml -------------------------------------------------------------------


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.Draft201909Validator.FORMAT_CHECKER

    @checker.checks("duration")
    def duration(value: object) -> bool:  # Compose/Go durations: 5s, 1m30s, 500ms
        return not isinstance(value, str) or bool(re.fullmatch(r"(\d+(\.\d+)?(us|ms|s|m|h))+", value))

    @checker.checks("subnet_ip_address", raises=ValueError)
    def subnet(value: object) -> bool:
        return not isinstance(value, str) or bool(ipaddress.ip_network(value))

    return checker


def _compose_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads((REPO / "tests" / "support" / "compose_spec.json").read_text())
    validator = jsonschema.Draft201909Validator(schema, format_checker=_format_checker())
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_matches_the_compose_specification() -> None:
    assert _compose_errors(COMPOSE) == []
    # The check has teeth: typical mistakes fail it.
    for broken in (
        {**COMPOSE, "services": {**SERVICES, "server": {**SERVICES["server"], "commnad": ["server"]}}},
        {**COMPOSE, "services": {**SERVICES, "worker": {**SERVICES["worker"], "depends_on": {"migrate": {"condition": "done"}}}}},
        {**COMPOSE, "services": {**SERVICES, "redis": {**SERVICES["redis"], "healthcheck": {"test": ["CMD"], "interval": "5 sec"}}}},
    ):
        assert _compose_errors(broken)


def _commands_the_tests_run() -> set[str]:
    """First arguments of the Process([...]) and run([...]) calls (tests/support/processes.py)
    anywhere in the test suite: the commands its stacks are made of."""
    commands = set()
    for path in (REPO / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in {"Process", "run"}:
                args = node.args[0] if node.args else None
                if isinstance(args, ast.List) and args.elts and isinstance(args.elts[0], ast.Constant):
                    commands.add(args.elts[0].value)
    return commands


def test_compose_runs_the_commands_the_tests_run() -> None:
    tested = _commands_the_tests_run()
    assert {"migrate", "server", "worker", "scheduler", "inbound", "submission"} <= tested
    commands = {name: service["command"] for name, service in POSTWIRE_SERVICES.items()}
    assert sorted(c[0] for c in commands.values()) == ["inbound", "migrate", "scheduler", "server", "submission",
                                                       "worker"]
    for command in commands.values():
        assert command[0] in tested
        build_parser().parse_args(command)  # a real subcommand of the CLI
    assert all(s["image"] == "postwire:local" and s["env_file"] == ".env" for s in POSTWIRE_SERVICES.values())
    assert "ENTRYPOINT [\"postwire\"]" in DOCKERFILE


def _needs(service: str) -> dict[str, str]:
    return {name: d["condition"] for name, d in SERVICES[service].get("depends_on", {}).items()}


def test_compose_starts_services_in_order_with_health_checks() -> None:
    assert _needs("migrate") == {"postgres": "service_healthy"}
    assert SERVICES["migrate"]["restart"] == "no"
    for name in ("server", "worker", "scheduler"):
        assert _needs(name) == {
            "migrate": "service_completed_successfully", "rabbitmq": "service_healthy", "redis": "service_healthy"
        }
    assert _needs("envoy") == {"server": "service_healthy"}
    for name in SERVICES:  # whatever is waited for as healthy has a health check
        for needed, condition in _needs(name).items():
            assert condition != "service_healthy" or "healthcheck" in SERVICES[needed], needed
    probes = {name: " ".join(s["healthcheck"]["test"]) for name, s in SERVICES.items() if "healthcheck" in s}
    assert "pg_isready" in probes["postgres"]
    assert "rabbitmq-diagnostics -q ping" in probes["rabbitmq"]
    assert "redis-cli ping" in probes["redis"]
    assert "grpc_health" in probes["server"]
    assert "/mailpit readyz" in probes["mailpit"]
    # Scalable: nothing pins a replica's name or a host port.
    for name in ("server", "worker", "scheduler"):
        assert "container_name" not in SERVICES[name] and "ports" not in SERVICES[name]
    assert {"postgres-data", "rabbitmq-data", "redis-data", "mailpit-data"} <= set(COMPOSE["volumes"])


def test_compose_images_are_pinned() -> None:
    for name, service in SERVICES.items():
        if name not in POSTWIRE_SERVICES:
            image, _, tag = service["image"].partition(":")
            # A full release: x.y.z, or x.y for PostgreSQL (its releases are major.minor).
            full = r"v?\d+\.\d+" + ("" if image == "postgres" else r"\.\d+") + r"(-[a-z0-9.]+)?"
            assert re.fullmatch(full, tag), f"{name}: {service['image']} is not pinned to a release"


def test_compose_uses_only_variables_defined_in_env_example() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    used |= set(re.findall(r"(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)", text))
    assert used, "expected the bundled services' credentials to be interpolated"
    assert used <= set(ENV_EXAMPLE), used - set(ENV_EXAMPLE)


def test_compose_holds_no_secrets() -> None:
    assert "POSTWIRE_SECRET_KEY" not in json.dumps(COMPOSE)  # comments may name it, nothing sets it
    for name, service in SERVICES.items():
        environment = service.get("environment", {})
        assert not [k for k in environment if k.startswith("POSTWIRE_")], f"{name}: POSTWIRE_* belong in .env"
        for key, value in environment.items():
            if re.search(r"PASS|SECRET|KEY|TOKEN", key):
                assert re.fullmatch(r"\$\{\w+(:\?[^}]*)?\}", str(value)), f"{name}: {key} is a literal"


# .env.example -------------------------------------------------------------------------


def test_env_example_is_consistent_with_the_stack() -> None:
    env = ENV_EXAMPLE
    assert env["POSTWIRE_SECRET_KEY"] == "change-me"
    known = {f"POSTWIRE_{n.upper()}" for n in Settings.model_fields}
    assert {k for k in env if k.startswith("POSTWIRE_")} <= known
    db = urlsplit(env["POSTWIRE_DATABASE_URL"])
    assert (db.username, db.password, db.hostname, db.path) == (
        env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], "postgres", "/" + env["POSTGRES_DB"]
    )
    broker = urlsplit(env["POSTWIRE_BROKER_URL"])
    assert (broker.username, broker.password, broker.hostname) == (
        env["RABBITMQ_DEFAULT_USER"], env["RABBITMQ_DEFAULT_PASS"], "rabbitmq"
    )
    assert urlsplit(env["POSTWIRE_REDIS_URL"]).hostname == "redis"
    assert env["POSTWIRE_SMTP_HOST"] in SERVICES
    assert env["POSTWIRE_GRPC_HOST"] == "0.0.0.0"
    # The servers trust exactly Envoy's fixed address, which lies in the stack's subnet.
    envoy_ip = SERVICES["envoy"]["networks"]["default"]["ipv4_address"]
    subnet = ipaddress.ip_network(COMPOSE["networks"]["default"]["ipam"]["config"][0]["subnet"])
    assert json.loads(env["POSTWIRE_TRUSTED_PROXIES"]) == [envoy_ip]
    assert ipaddress.ip_address(envoy_ip) in subnet


def _config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([POSTWIRE, "config"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)


def _lines(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines())


def test_env_example_loads_and_config_shows_it_masked() -> None:
    result = _config({**base_env(), **ENV_EXAMPLE})
    assert result.returncode == 0, result.stderr
    shown = _lines(result.stdout)
    assert list(shown) == [f"POSTWIRE_{n.upper()}" for n in Settings.model_fields]
    assert shown["POSTWIRE_SECRET_KEY"] == MASK
    assert shown["POSTWIRE_DATABASE_URL"] == f"postgresql+psycopg://postwire:{MASK}@postgres:5432/postwire"
    assert shown["POSTWIRE_TRUSTED_PROXIES"] == '["172.30.57.10"]'
    assert shown["POSTWIRE_GRPC_HOST"] == "0.0.0.0"
    assert "change-me" not in result.stdout


# postwire config ----------------------------------------------------------------------


def test_config_masks_every_secret_and_shows_the_rest() -> None:
    secrets = ["sk-0123456789abcdef", "smtp-pass-42", "relay-pass-77", "db-pass-9", "redis-pass-5"]
    relays = [{"host": "smtp.example.com", "port": 587, "password": secrets[2]}, {"host": "backup.example.com"}]
    env = base_env(
        secret_key=secrets[0], smtp_password=secrets[1], smtp_relays=json.dumps(relays),
        database_url=f"postgresql+psycopg://app:{secrets[3]}@db:5432/postwire",
        redis_url=f"redis://:{secrets[4]}@cache:6379/0", max_streams_per_key="7", rate_limits="false",
    )
    result = _config(env)
    assert result.returncode == 0, result.stderr
    for secret in secrets:
        assert secret not in result.stdout
    shown = _lines(result.stdout)
    assert shown["POSTWIRE_SECRET_KEY"] == MASK and shown["POSTWIRE_SMTP_PASSWORD"] == MASK
    assert shown["POSTWIRE_DATABASE_URL"] == f"postgresql+psycopg://app:{MASK}@db:5432/postwire"
    assert shown["POSTWIRE_REDIS_URL"] == f"redis://:{MASK}@cache:6379/0"
    shown_relays = json.loads(shown["POSTWIRE_SMTP_RELAYS"])
    assert [r["password"] for r in shown_relays] == [MASK, "(not set)"]  # set or not, never the value
    assert shown_relays[0]["host"] == "smtp.example.com" and shown_relays[0]["port"] == 587
    assert shown["POSTWIRE_MAX_STREAMS_PER_KEY"] == "7" and shown["POSTWIRE_RATE_LIMITS"] == "false"
    assert shown["POSTWIRE_WEBHOOK_SECRET_OVERLAP_SECONDS"] == "86400.0"
    assert shown["POSTWIRE_BROKER_URL"] == f"amqp://guest:{MASK}@127.0.0.1:5672/%2F"  # the default's

    unset = _lines(_config(base_env(secret_key="x")).stdout)
    assert unset["POSTWIRE_SMTP_PASSWORD"] == "(not set)"


def test_config_names_a_missing_or_malformed_setting() -> None:
    result = _config(base_env())
    assert result.returncode == 2 and result.stdout == ""
    assert "POSTWIRE_SECRET_KEY" in result.stderr and "Traceback" not in result.stderr
    result = _config(base_env(secret_key="x", smtp_relays='[{"port": 25}]'))
    assert result.returncode == 2 and "POSTWIRE_SMTP_RELAYS [0.host]" in result.stderr


@pytest.mark.parametrize("model", [Settings, RelaySettings])
def test_settings_are_documented_and_credentials_are_secret(model: type[Settings | RelaySettings]) -> None:
    for name, field in model.model_fields.items():
        assert field.description, f"{model.__name__}.{name} has no description"
        if re.search(r"secret|password|token|credential", name) and field.annotation in (str, SecretStr):
            assert field.annotation is SecretStr, f"{model.__name__}.{name} should be a SecretStr"


# Dockerfile ---------------------------------------------------------------------------


def _stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), split by FROM."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    stages: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_dockerfile_is_multi_stage_pinned_and_non_root() -> None:
    stages = _stages()
    assert len(stages) >= 2
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", DOCKERFILE, re.MULTILINE))
    bases = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], s[0].split()[1]) for s in stages]
    for base in bases:
        image, _, tag = base.partition(":")
        assert image == "python" and tag != "latest"
        version = re.match(r"(\d+)\.(\d+)\.(\d+)-slim-bookworm$", tag)
        assert version, f"{base}: pin the full version"
        assert (int(version[1]), int(version[2])) == sys.version_info[:2]
    builder, runtime = stages[0], stages[-1]
    assert any("requirements.lock" in line and "pip install -r" in line for line in builder)
    assert any("pip install --no-deps ." in line for line in builder + runtime)
    assert any(line.startswith("COPY --from=builder /opt/venv") for line in runtime)
    users = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert runtime[-2:] == ['ENTRYPOINT ["postwire"]', 'CMD ["server"]']


def _builder_copies() -> set[str]:
    return {src.rstrip("/").removeprefix("./") for line in _stages()[0] if line.startswith("COPY ")
            for src in shlex.split(line)[1:-1]}


def test_image_build_context_has_what_the_package_needs() -> None:
    """The builder copies every directory pyproject.toml packages from; .dockerignore
    keeps secrets and local state out and lets those directories in."""
    find = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    needed = {"pyproject.toml", "requirements.lock"}
    for where in find["where"]:
        for pattern in find["include"]:
            for found in (REPO / where).glob(pattern.rstrip("*") + "*"):
                if found.is_dir() and any(found.rglob("*.py")):
                    needed.add(found.relative_to(REPO).parts[0])
    copied = _builder_copies()
    assert needed <= copied, needed - copied
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", ".postwire", ".env", "**/__pycache__"} <= ignored
    assert not needed & ignored


def test_image_install_ships_every_module_migration_and_stub(tmp_path: Path) -> None:
    """Build the wheels the builder stage installs (`pip install --no-deps ./clients/python .`)
    from exactly what it copies: nothing the processes load may be missing outside an
    editable install. The SDK wheel carries the stubs and the `postwire` command; the
    service wheel adds its operator commands to it."""
    src = tmp_path / "src"
    for name in _builder_copies():
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / name, src / name)
    for project in (src / "clients" / "python", src):
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(project)],
            check=True, capture_output=True, timeout=300,
        )
    wheels = {
        "service": {"core": "core", "server": "server", "workers": "workers", "postwire_service": "postwire_service"},
        "client": {"clients/python/postwire_client": "postwire_client", "gen/postwire": "postwire"},
    }
    entry_points = {"service": "service = postwire_service.cli:register", "client": "postwire = postwire_client.cli:main"}
    for kind, roots in wheels.items():
        (wheel,) = tmp_path.glob("postwire_client-*.whl" if kind == "client" else "postwire-*.whl")
        names = set(zipfile.ZipFile(wheel).namelist())
        expected = {
            f"{target}/{path.relative_to(REPO / root).as_posix()}"
            for root, target in roots.items()
            for path in (REPO / root).rglob("*")
            if path.suffix in {".py", ".pyi", ".mako", ".ini"} and "__pycache__" not in path.parts
        }
        assert expected <= names, sorted(expected - names)
        listed = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert entry_points[kind] in zipfile.ZipFile(wheel).read(listed).decode()
        if kind == "service":
            assert any(n.startswith("core/storage/migrations/versions/") for n in names)
        else:
            assert not {n.split("/")[0] for n in names} & {"core", "server", "workers", "postwire_service"}


# Envoy --------------------------------------------------------------------------------


def test_envoy_compose_config_is_envoy_yaml_with_container_addresses() -> None:
    config = yaml.safe_load((REPO / "envoy" / "envoy.yaml").read_text())
    listener = config["static_resources"]["listeners"][0]
    listener["address"]["socket_address"]["address"] = "0.0.0.0"
    http = listener["filter_chains"][0]["filters"][0]["typed_config"]
    transcoder = next(f for f in http["http_filters"] if f["name"].endswith("grpc_json_transcoder"))
    transcoder["typed_config"]["proto_descriptor"] = "/etc/envoy/postwire.binpb"
    cluster = config["static_resources"]["clusters"][0]
    cluster.update(type="STRICT_DNS", dns_lookup_family="V4_ONLY")
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    endpoint["socket_address"]["address"] = "server"
    for tracking in config["static_resources"]["clusters"][1:]:  # the tracking handler, on the servers too
        tracking.update(type="STRICT_DNS", dns_lookup_family="V4_ONLY")
        tracking["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["address"] = "server"
    assert yaml.safe_load(ENVOY_COMPOSE.read_text()) == config, (
        "envoy/envoy.compose.yaml must be envoy/envoy.yaml plus only the container addresses"
    )
    # ... and it fits the compose file: mounts, upstream port, published listener port.
    volumes = SERVICES["envoy"]["volumes"]
    assert "./envoy/envoy.compose.yaml:/etc/envoy/envoy.yaml:ro" in volumes
    assert "./gen/postwire.binpb:/etc/envoy/postwire.binpb:ro" in volumes
    assert str(endpoint["socket_address"]["port_value"]) == ENV_EXAMPLE["POSTWIRE_GRPC_PORT"]
    port = listener["address"]["socket_address"]["port_value"]
    assert f"{port}:{port}" in SERVICES["envoy"]["ports"]
    image_version = SERVICES["envoy"]["image"].rpartition(":v")[2]
    version = subprocess.run([envoy_binary(), "--version"], capture_output=True, text=True).stdout
    assert f"/{image_version}/" in version, "the image should be the Envoy the tests run"


def test_envoy_compose_config_validates_with_envoy(tmp_path: Path) -> None:
    text = ENVOY_COMPOSE.read_text().replace("/etc/envoy/postwire.binpb", str(REPO / "gen" / "postwire.binpb"))
    copy = tmp_path / "envoy.compose.yaml"
    copy.write_text(text)
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(copy), "--base-id", str(unique_base_id())],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout + result.stderr


# The server's health check, against a real `postwire server` --------------------------


def test_server_healthcheck_probes_the_grpc_health_service(stack: Any) -> None:
    kind, probe = SERVICES["server"]["healthcheck"]["test"][:2], SERVICES["server"]["healthcheck"]["test"][2:]
    assert kind == ["CMD", "python"] and probe[0] == "-c"
    port = stack.address.rsplit(":", 1)[1]
    ok = subprocess.run([sys.executable, *probe], env=base_env(grpc_port=port), capture_output=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    down = subprocess.run(
        [sys.executable, *probe], env=base_env(grpc_port=str(free_port())), capture_output=True, timeout=30
    )
    assert down.returncode != 0


# Generated docs -----------------------------------------------------------------------


def test_docs_are_up_to_date(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(REPO / "tools" / "gen_docs.py"), "--out", str(tmp_path)],
                   cwd=REPO, check=True, capture_output=True, timeout=120)
    for name in ("settings.md", "api.md"):
        assert (tmp_path / name).read_text() == (REPO / "docs" / name).read_text(), (
            f"docs/{name} is stale: run `make docs`"
        )
    settings_doc = (REPO / "docs" / "settings.md").read_text()
    assert all(f"`POSTWIRE_{n.upper()}`" in settings_doc for n in Settings.model_fields)
    api_doc = (REPO / "docs" / "api.md").read_text()
    from postwire.v1 import email_service_pb2, key_service_pb2, webhook_service_pb2

    for module in (email_service_pb2, key_service_pb2, webhook_service_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                assert f"#### {service.name}.{method.name}" in api_doc
