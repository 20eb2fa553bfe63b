"""A/B variants: checking the ones a version is given, and picking one for a Send.

Send picks by weight with Python's `random` (seeded from the operating system when the
process starts): over many emails each variant's share approaches weight / total. The
choice is not derived from the request, so the idempotency fingerprint covers the
request (template, version asked, variables), not the rendered parts: a replay finds
the original email whichever variant it got.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from core.emails.addresses import has_control_chars
from core.errors import FieldViolation
from core.templates.limits import MAX_VARIANT_NAME, MAX_VARIANTS, MAX_WEIGHT
from core.templates.model import Variant

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check(variants: Sequence[Variant], out: list[FieldViolation]) -> tuple[Variant, ...]:
    """The variants with weight 0 read as 1; violations on `variants[i].name|weight`."""
    if len(variants) > MAX_VARIANTS:
        out.append(FieldViolation("variants", f"{len(variants)} variants; the limit is {MAX_VARIANTS}"))
        return ()
    seen: set[str] = set()
    result = []
    for index, variant in enumerate(variants):
        path = f"variants[{index}]"
        if not _NAME.fullmatch(variant.name) or len(variant.name) > MAX_VARIANT_NAME or has_control_chars(variant.name):
            out.append(FieldViolation(f"{path}.name", (
                f"required: 1 to {MAX_VARIANT_NAME} letters, digits, '_', '.' or '-', starting with a letter or digit"
            )))
        elif variant.name in seen:
            out.append(FieldViolation(f"{path}.name", "two variants have this name"))
        seen.add(variant.name)
        if not 0 <= variant.weight <= MAX_WEIGHT:
            out.append(FieldViolation(f"{path}.weight", f"0 to {MAX_WEIGHT:,} (0 or unset counts as 1)"))
        if not variant.parts.html and not variant.parts.text:
            out.append(FieldViolation(f"{path}.html", "give an html part, a text part or both"))
        result.append(Variant(variant.name, variant.weight or 1, variant.parts))
    return tuple(result)


def pick(choices: Sequence[Variant], draw: float | None = None) -> Variant:
    """One of `choices`, by weight; `draw` in [0, 1) (random when None)."""
    if len(choices) == 1:
        return choices[0]
    point = (random.random() if draw is None else draw) * sum(v.weight for v in choices)
    for variant in choices:
        point -= variant.weight
        if point < 0:
            return variant
    return choices[-1]


def named(choices: Sequence[Variant], name: str) -> Variant | None:
    """The variant called `name`; the first one when `name` is empty."""
    if not name:
        return choices[0]
    return next((v for v in choices if v.name == name), None)
