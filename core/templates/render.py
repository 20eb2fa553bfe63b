"""Compiling template parts (once per version: CompiledCache) and rendering them.

Errors are values: a syntax error is InvalidArgument on the part's field with its line
(`variants[1].html`: "line 3: unexpected '}'"); at render time a missing variable is
InvalidArgument on `variables.<path>` naming it, anything else the template did
(a sandbox refusal, a render limit, a division by zero) InvalidArgument on
`template_id`, saying which part and line.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Sequence
from itertools import islice
from dataclasses import dataclass
from typing import Any

from jinja2 import Template
from jinja2.exceptions import TemplateSyntaxError
from jinja2.utils import missing

from core.errors import FieldViolation, InvalidArgument
from core.templates import metrics
from core.templates.limits import MAX_OUTPUT_BYTES, MAX_VARIABLES_BYTES
from core.templates.model import Content, Parts, Variant
from core.templates.sandbox import Budget, RenderLimit, TemplateEnvironment, UndefinedVariable, current

_TEXT = TemplateEnvironment(autoescape=False)  # subject and text
_HTML = TemplateEnvironment(autoescape=True)
PART_NAMES = ("subject", "html", "text")
_OK = metrics.RENDERS.labels("ok")


@dataclass(frozen=True)
class CompiledParts:
    subject: Template | None
    html: Template | None
    text: Template | None


@dataclass(frozen=True)
class CompiledVersion:
    """One version, compiled: its variants (the implicit one "" without variants)."""

    template_id: str
    version: int
    variants: tuple[tuple[Variant, CompiledParts], ...]

    def choices(self) -> tuple[Variant, ...]:
        return tuple(v for v, _ in self.variants)

    def compiled(self, variant: Variant) -> CompiledParts:
        return next(c for v, c in self.variants if v is variant)


def compile_parts(parts: Parts, prefix: str = "", out: list[FieldViolation] | None = None) -> CompiledParts:
    """The parts compiled; a syntax error is added to `out` (raised when `out` is None)."""
    violations: list[FieldViolation] = []
    compiled: dict[str, Template | None] = {}
    for name in PART_NAMES:
        source = getattr(parts, name)
        compiled[name] = None
        if not source:
            continue
        try:
            compiled[name] = (_HTML if name == "html" else _TEXT).compile_template(source)
            metrics.COMPILES.inc()
        except TemplateSyntaxError as exc:
            violations.append(FieldViolation(f"{prefix}{name}", f"line {exc.lineno}: {exc.message}"))
    if out is not None:
        out.extend(violations)
    elif violations:
        raise InvalidArgument(violations)
    return CompiledParts(compiled["subject"], compiled["html"], compiled["text"])


def compile_content(template_id: str, version: int, content: Content) -> CompiledVersion:
    return CompiledVersion(template_id, version, tuple((v, compile_parts(v.parts)) for v in content.choices()))


def check_variables(variables: dict[str, Any]) -> None:
    if variables and len(json.dumps(variables, default=str)) > MAX_VARIABLES_BYTES:
        raise InvalidArgument([FieldViolation("variables", f"at most {MAX_VARIABLES_BYTES:,} bytes as JSON")])


def render(compiled: CompiledParts, variables: dict[str, Any]) -> Parts:
    """The rendered parts (the subject stripped of surrounding whitespace); InvalidArgument
    naming the missing variable, or saying what the template did wrong."""
    started = time.perf_counter()
    token = current.set(Budget())
    left = MAX_OUTPUT_BYTES
    rendered: dict[str, str] = {}
    try:
        for name in PART_NAMES:
            template = getattr(compiled, name)
            rendered[name] = _generate(template, variables, left, name) if template is not None else ""
            left -= len(rendered[name])
    except UndefinedVariable as exc:
        metrics.RENDERS.labels("missing_variable").inc()
        field = _missing_field(exc, variables)
        raise InvalidArgument([FieldViolation(field, (
            f"{field.removeprefix('variables.')} is used by the template ({name}{_line(exc)}) but not given in variables"
        ))]) from None
    except RenderLimit as exc:
        metrics.RENDERS.labels("limit").inc()
        raise InvalidArgument([FieldViolation("template_id", f"{name}{_line(exc)}: {exc}")]) from None
    except Exception as exc:  # SecurityError, TypeError, ZeroDivisionError, RecursionError, ...
        metrics.RENDERS.labels("error").inc()
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        raise InvalidArgument([FieldViolation("template_id", f"{name}{_line(exc)}: {message}")]) from None
    finally:
        current.reset(token)
    _OK.inc()
    metrics.RENDER_SECONDS.observe(time.perf_counter() - started)
    return Parts(rendered["subject"].strip(), rendered["html"], rendered["text"])


def _generate(template: Template, variables: dict[str, Any], left: int, name: str) -> str:
    """The part, its output counted 32 chunks at a time (a chunk is at most MAX_VALUE_BYTES
    or one variable), without Template.generate's extra generator layer."""
    chunks: list[str] = []
    try:
        stream = template.root_render_func(template.new_context(variables))
        while block := list(islice(stream, 32)):
            left -= sum(map(len, block))
            if left < 0:
                raise RenderLimit(f"the rendered parts pass {MAX_OUTPUT_BYTES:,} characters")
            chunks += block
    except Exception:
        template.environment.handle_exception()  # raises it again, its traceback with the template's lines
    return "".join(chunks)


def _line(exc: BaseException) -> str:
    """", line N": the template line the error was raised on (Jinja rewrites tracebacks
    so that template frames carry it), or "" when unknown."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return f", line {line}" if line else ""


def _missing_field(exc: UndefinedVariable, variables: dict[str, Any]) -> str:
    name = exc.name if isinstance(exc.name, str) else str(exc.name)
    if exc.owner is missing or exc.owner is variables:
        return f"variables.{name}"
    path = _path_of(exc.owner, variables, "variables", 0)
    return f"{path}.{name}" if path else f"variables.{name}"


def _path_of(target: object, value: Any, path: str, depth: int) -> str | None:
    """Where `target` sits inside `value` (by identity), as a dotted path."""
    if value is target:
        return path
    if depth > 20:
        return None
    items: Sequence[tuple[str, Any]] = []
    if isinstance(value, dict):
        items = [(f"{path}.{k}", v) for k, v in value.items()]
    elif isinstance(value, list):
        items = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
    for child_path, child in items:
        if isinstance(child, (dict, list)) and (found := _path_of(target, child, child_path, depth + 1)):
            return found
    return None


class CompiledCache:
    """Compiled versions by (template id, version), least recently used dropped past
    `size`. Versions never change once stored, so an entry never goes stale."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, int], CompiledVersion] = OrderedDict()

    def get(self, template_id: str, version: int) -> CompiledVersion | None:
        entry = self._entries.get((template_id, version))
        if entry is not None:
            self._entries.move_to_end((template_id, version))
        return entry

    def put(self, entry: CompiledVersion) -> CompiledVersion:
        self._entries[(entry.template_id, entry.version)] = entry
        self._entries.move_to_end((entry.template_id, entry.version))
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return entry

    def compiled(self, template_id: str, version: int, content: Content) -> CompiledVersion:
        return self.get(template_id, version) or self.put(compile_content(template_id, version, content))

    def forget(self, template_id: str) -> None:
        """Drop a deleted template's versions (memory only: they would never be asked again)."""
        for key in [k for k in self._entries if k[0] == template_id]:
            del self._entries[key]
