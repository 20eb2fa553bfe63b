"""`make bench`: run every benchmark once and write a Markdown report to
bench/results/<date>.md (and bench/results/latest.md) with the machine and versions."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = [
    ("Accept path (Send over gRPC vs bare echo)", ["accept.py", "--seconds", "10", "--concurrency", "64", "--rates", "200,500,1000", "--processes", "2"]),
    ("Bulk accept (SendBatch vs single Send)", ["batch.py", "--size", "500", "--concurrency", "4", "--seconds", "10"]),
    ("A 100,000-email SendStream drains (ledger)", ["stream_drain.py", "-n", "100000"]),
    ("Delivery (to smtp-sink vs smtp-source)", ["deliver.py", "-n", "20000", "--rates", "100,200", "--seconds", "10"]),
    ("Event lag (stream subscriber under load vs idle)", ["stream.py", "--rate", "170", "--seconds", "15"]),
    ("Auth and rate limiting cost", ["auth.py", "-n", "3000"]),
    ("CPU per email (one server process; the delivery code)", ["cpu.py"]),
    ("DKIM signing cost (vs rendering)", ["dkim_cost.py"]),
    ("Open and click tracking through Envoy (vs a refused token), rewrite cost (vs rendering)", ["tracking.py"]),
    ("Direct-to-MX delivery with DKIM (vs relay and Postfix)", ["deliver_mx.py", "-n", "5000"]),
    ("SMTP submission (vs gRPC Send and Postfix's injection)", ["submission.py", "--seconds", "10", "--connections", "32"]),
    ("Cost with history (1,000,000 emails stored vs an empty database)", ["history.py", "--emails", "1000000"]),
    ("Message search (ListEmails at 1,000,000 emails vs GetStatus)", ["search.py", "--emails", "1000000"]),
    ("Scaling (worker and server processes)", ["scaling.py", "-n", "4000"]),
    ("Templates (Send by template vs the same content inline; render from cache vs compile)",
     ["templates.py", "--seconds", "8", "--rounds", "2"]),
    ("GetStats at 1,000,000 emails (and the stats rollup) vs GetStatus", ["stats.py", "--emails", "1000000"]),
]


def version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=20)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except Exception:
        return "unknown"


def main() -> None:
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    lines = [
        f"# Postwire benchmarks, {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}",
        f"- python: {sys.version.split()[0]}",
        f"- postgresql: {version(['psql', '--version'])}",
        f"- rabbitmq: {version(['rabbitmqctl', 'version'])}",
        f"- redis: {version(['redis-server', '--version'])}",
        "- load generator, services and Postwire share the same cores",
        "",
    ]
    for title, args in RUNS:
        started = time.monotonic()
        proc = subprocess.run([sys.executable, str(HERE / args[0]), *args[1:]], cwd=HERE, capture_output=True, text=True)
        output = [line for line in proc.stdout.splitlines() if " INFO " not in line and " WARNING " not in line]
        lines += [f"## {title}", "", f"`python bench/{' '.join(args)}` ({time.monotonic() - started:.0f} s)", "", "```"]
        lines += output or [f"failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}"]
        lines += ["```", ""]
        print("\n".join(lines[-len(output) - 2 :]), flush=True)
    report = "\n".join(lines)
    (results / f"{now:%Y-%m-%d}.md").write_text(report)
    (results / "latest.md").write_text(report)
    print(f"wrote {results / 'latest.md'}")


if __name__ == "__main__":
    main()
