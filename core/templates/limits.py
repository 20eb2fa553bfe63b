"""The bounds of templates and of rendering them (docs/templates.md lists them).

A version's parts (every variant's subject, html and text) total at most
MAX_VERSION_BYTES in UTF-8. A render may take at most MAX_STEPS steps (loop iterations,
calls, filters and checked operators, counted together) and RENDER_SECONDS of wall-clock
time (and one SendBatch call or SendStream group CALL_RENDER_SECONDS in all), and
produce at most MAX_OUTPUT_BYTES; no single value it builds (a string or list
made by `*`, `+`, `~` or a filter) may pass MAX_VALUE_BYTES. The rendered email then
meets Send's own limits (core.emails.validation.SendLimits: subject length, total size).
"""

from __future__ import annotations

MAX_VERSION_BYTES = 512 * 1024  # all parts of all variants of one version
MAX_NAME = 200  # template name, characters
MAX_DESCRIPTION = 1000
MAX_VARIANTS = 10
MAX_VARIANT_NAME = 64  # the emails.template_variant column
MAX_WEIGHT = 1_000_000
MAX_VARIABLES_BYTES = 1024 * 1024  # the variables of one render, as JSON

MAX_RANGE = 10_000  # items of one range() (Jinja's sandbox allows 100,000)
MAX_STEPS = 100_000  # loop iterations + calls + filters + checked operators, per render
RENDER_SECONDS = 0.25  # per render (all parts of one variant)
CALL_RENDER_SECONDS = 2.0  # per SendBatch call or SendStream group: later templated emails are refused
MAX_OUTPUT_BYTES = 5 * 1024 * 1024  # subject + html + text of one render, characters
MAX_VALUE_BYTES = 1024 * 1024  # one string or list built while rendering
MAX_WIDTH = 10_000  # widths, counts and repeats given to filters and format specs
