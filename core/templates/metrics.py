"""Prometheus metrics of template rendering (docs/observability.md)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from core.observability.metrics import metric

RENDERS = metric(
    Counter, "postwire_template_renders_total",
    "Template renders (Send, SendBatch, SendStream and RenderTemplate), by outcome: ok, missing_variable "
    "(a variable the template uses was not given), limit (stopped by a render limit), error (any other "
    "template error, sandbox refusals included).",
    ["outcome"],
)
RENDER_SECONDS = metric(
    Histogram, "postwire_template_render_seconds", "Time to render one email's parts from a compiled template.",
    buckets=(0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25, 1.0),
)
COMPILES = metric(
    Counter, "postwire_template_compiles_total",
    "Template versions compiled (a miss of the compiled-template cache, or a create/update check).",
)
