"""Templates on the Send hot path. Two parts, one invocation:

1. In process: rendering a receipt (subject, ~2 KB html with a loop of 5 lines, text) from
   the compiled-template cache vs compiling it each time (what a cache miss costs).
2. The full stack (PostgreSQL, RabbitMQ, Redis, one server process, no worker): Send with
   `template_id` + variables vs Send of the same rendered content inline, closed loop,
   alternating rounds so both see the same machine; rates and their ratio, and CPU of the
   server per email.

    .venv/bin/python bench/templates.py [--seconds 8] [--concurrency 64] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import grpc
from _stack import bench_stack
from accept import closed_loop, cpu_seconds, quantiles

from core.templates.model import Content, Parts
from core.templates.render import CompiledCache, compile_content, render
from postwire.v1 import email_service_pb2 as pb
from postwire.v1 import email_service_pb2_grpc, template_service_pb2_grpc
from postwire.v1 import template_service_pb2 as tpb
from tests.support.processes import run

SUBJECT = "Your receipt for order {{ order.id }}"
HTML = """<html><body><h1>Thanks, {{ first_name }}!</h1>
<p>Order <b>{{ order.id }}</b> placed on {{ order.date }}.</p>
<table>{% for line in order.lines %}
<tr><td>{{ loop.index }}</td><td>{{ line.name|title }}</td><td>{{ line.qty }}</td>
<td>{{ '%.2f'|format(line.price) }}</td></tr>{% endfor %}</table>
<p>Total: {{ '%.2f'|format(order.total) }} {{ order.currency }}</p>
""" + "<p>" + "Questions? Reply to this email and a human will answer. " * 25 + "</p></body></html>"
TEXT = """Thanks, {{ first_name }}! Order {{ order.id }}:
{% for line in order.lines %}- {{ line.qty }} x {{ line.name }} {{ '%.2f'|format(line.price) }}
{% endfor %}Total {{ '%.2f'|format(order.total) }} {{ order.currency }}
"""
VARIABLES = {"first_name": "Ada", "order": {
    "id": 1042, "date": "2026-12-07", "currency": "EUR", "total": 41.5,
    "lines": [{"name": f"item {i}", "qty": i, "price": 1.5 * i} for i in range(1, 6)],
}}


def micros(fn, n: int) -> float:  # noqa: ANN001
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def in_process() -> None:
    content = Content(Parts(SUBJECT, HTML, TEXT))
    cache = CompiledCache()
    cached = micros(lambda: render(cache.compiled("tpl_bench", 1, content).variants[0][1], VARIABLES), 3000)
    compiled = micros(lambda: render(compile_content("tpl_bench", 1, content).variants[0][1], VARIABLES), 200)
    print(f"render from the cache       {cached:8.1f} µs per email")
    print(f"compile + render (no cache) {compiled:8.1f} µs per email  ({compiled / cached:.0f}x the cached render)")


async def on_stack(args: argparse.Namespace) -> None:
    with bench_stack(0) as stack:
        admin = run(["keys", "create", "--name", "bench-admin", "--scope", "admin"], stack.env).strip()
        async with grpc.aio.insecure_channel(stack.address) as channel:
            templates = template_service_pb2_grpc.TemplateServiceStub(channel)
            created = await templates.CreateTemplate(tpb.CreateTemplateRequest(
                name="receipt", subject=SUBJECT, html=HTML, text=TEXT), metadata=(("x-api-key", admin),))
            tid = created.template.template_id
            preview = await templates.RenderTemplate(tpb.RenderTemplateRequest(template_id=tid, variables=VARIABLES),
                                                     metadata=(("x-api-key", stack.key),))
            stub = email_service_pb2_grpc.EmailServiceStub(channel)
            metadata = (("x-api-key", stack.key),)
            base = dict(from_address="bench@example.com", to=["rcpt@example.com"])
            requests = {
                "inline": pb.SendRequest(**base, subject=preview.subject, html_body=preview.html, text_body=preview.text),
                "template": pb.SendRequest(**base, template_id=tid, variables=VARIABLES),
            }
            rates: dict[str, list[float]] = {name: [] for name in requests}
            cpu: dict[str, list[float]] = {name: [] for name in requests}
            latencies: dict[str, list[float]] = {name: [] for name in requests}
            await closed_loop(lambda: stub.Send(requests["template"], metadata=metadata), 8, 1.0)  # warm up
            for _ in range(args.rounds):
                for name, request in requests.items():
                    before = cpu_seconds(stack.pids["server"])
                    rate, lat = await closed_loop(lambda r=request: stub.Send(r, metadata=metadata), args.concurrency,
                                                  args.seconds)
                    cpu[name].append((cpu_seconds(stack.pids["server"]) - before) / (rate * args.seconds) * 1e6)
                    rates[name].append(rate)
                    latencies[name] += lat
        for name in requests:
            print(f"Send {name:<9} c={args.concurrency:<3} {statistics.median(rates[name]):6.0f}/s  "
                  f"server {statistics.median(cpu[name]):5.0f} µs CPU/email  {quantiles(latencies[name])}")
        ratio = statistics.median(rates["template"]) / statistics.median(rates["inline"])
        print(f"template / inline rate: {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    in_process()
    asyncio.run(on_stack(args))


if __name__ == "__main__":
    main()
