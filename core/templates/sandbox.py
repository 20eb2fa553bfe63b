"""The Jinja2 environment templates are compiled and rendered in.

Jinja's ImmutableSandboxedEnvironment refuses attribute access to internals
(`__class__`, `__globals__`, ...) and changes to lists and dicts. On top of it, every
render draws on a `Budget` (core.templates.limits): each loop iteration, call, filter
and checked operator is a step, and each step also checks the render's deadline, so a
template that would loop for minutes (nested loops, recursive macros) stops within
RENDER_SECONDS or MAX_STEPS, whichever comes first. Loops are counted by rewriting the
parsed template: each `{% for %}` iterates through `guarded(...)`, imported into the
compiled code under a name a template cannot shadow. What a single step could blow up
is checked before it runs: range() is capped at MAX_RANGE, `*`, `**`, `+` and `%` on
strings, lists and integers at MAX_VALUE_BYTES (and a few thousand bits), widths given
to filters and format specs at MAX_WIDTH; the methods of strings are limited to a list
of harmless ones. include, extends and import are refused: a template is one document.
"""

from __future__ import annotations

import functools
import operator
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from core.templates.limits import MAX_RANGE, MAX_STEPS, MAX_VALUE_BYTES, MAX_WIDTH, RENDER_SECONDS

MAX_INT_BITS = 10_000  # about 3,000 digits
SLOW_FILTER_INPUT = 100_000  # characters given to wordwrap or urlize
# Methods of strings a template may call; the others (center, zfill, join, ljust, ...)
# can build huge strings in one call and have filters or plain expressions instead.
STR_METHODS = frozenset({
    "capitalize", "casefold", "count", "endswith", "find", "format", "index", "isalnum", "isalpha", "isdigit",
    "islower", "isnumeric", "isspace", "istitle", "isupper", "lower", "lstrip", "partition", "removeprefix",
    "removesuffix", "rfind", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip",
    "swapcase", "title", "upper",
})
# Filters whose integer arguments are widths or counts (bounded by MAX_WIDTH).
WIDTH_FILTERS = frozenset({"batch", "center", "format", "indent", "slice", "truncate", "wordwrap", "filesizeformat"})
_WIDE_PERCENT = re.compile(r"%[^a-zA-Z%]*?(\d{5,}|\*)")  # '%99999s', '%*s'
_WIDE_BRACES = re.compile(r"\{[^{}]*:[^{}]*?(\d{5,}|\{)")  # '{:>99999}', '{:{w}}'


class RenderLimit(Exception):
    """A render went past one of the limits; the message says which."""


class Budget:
    """Steps and time left to one render."""

    __slots__ = ("steps", "deadline", "seconds")

    def __init__(self, steps: int = MAX_STEPS, seconds: float = RENDER_SECONDS) -> None:
        self.steps = steps
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def tick(self) -> None:
        self.steps -= 1
        if self.steps & 31:  # the clock every 32 steps (each step is short: see the module's docstring)
            return
        if self.steps < 0:
            raise RenderLimit(
                f"stopped after {MAX_STEPS:,} steps (loop iterations, calls and filters): loop over fewer items"
            )
        if time.monotonic() > self.deadline:
            raise RenderLimit(f"stopped after {self.seconds * 1000:.0f} ms: the template takes too long to render")


current: ContextVar[Budget] = ContextVar("template_budget")


def _tick() -> None:
    budget = current.get(None)
    if budget is None:  # compile-time constant folding: leave it to the render
        raise RenderLimit("not rendering")
    budget.tick()


def guarded(iterable: Iterable[Any]) -> Iterator[Any]:
    """What every `{% for %}` iterates: one step per item."""
    for item in iterable:
        _tick()
        yield item


def sized(value: Any) -> Any:
    """A value built while rendering, refused past MAX_VALUE_BYTES."""
    if isinstance(value, (str, list, tuple)) and len(value) > MAX_VALUE_BYTES:
        raise RenderLimit(f"a value of {len(value):,} characters or items was built; the limit is {MAX_VALUE_BYTES:,}")
    return value


def bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise RenderLimit(f"range() of {len(numbers):,} items; the limit is {MAX_RANGE:,}")
    return numbers


def _check_format(text: Any) -> None:
    if not isinstance(text, str):
        return
    if "%" in text and _WIDE_PERCENT.search(text) or "{" in text and _WIDE_BRACES.search(text):
        raise RenderLimit(f"format widths are limited to {MAX_WIDTH - 1:,} and cannot come from arguments")


def _check_widths(values: Iterable[Any]) -> None:
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_WIDTH:
            raise RenderLimit(f"a width or count of {value:,}; the limit is {MAX_WIDTH:,}")


def _length(value: Any) -> int:
    return len(value) if isinstance(value, (str, list, tuple)) else 0


def _check_binop(op: str, left: Any, right: Any) -> None:
    ints = isinstance(left, int) and isinstance(right, int)
    if op == "**" and ints and right > 0 and abs(left) > 1 and left.bit_length() * right > MAX_INT_BITS:
        raise RenderLimit(f"{left} ** {right} is too large a number")
    if op == "*":
        if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise RenderLimit("the product is too large a number")
        count = right if isinstance(right, int) else left if isinstance(left, int) else 0
        if count * max(_length(left), _length(right)) > MAX_VALUE_BYTES:
            raise RenderLimit(f"repeating would build more than {MAX_VALUE_BYTES:,} characters or items")
    if op == "+" and _length(left) + _length(right) > MAX_VALUE_BYTES:
        raise RenderLimit(f"joining would build more than {MAX_VALUE_BYTES:,} characters or items")
    if op == "%":
        _check_format(left)


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """The filter, one step per call, its result bounded; widths, joins and replacements
    checked before they run."""
    skip = 2 if getattr(func, "jinja_pass_arg", None) is not None else 1  # context/environment, then the value
    check = _FILTER_CHECKS.get(name)

    @functools.wraps(func)
    def filtered(*args: Any, **kwargs: Any) -> Any:
        _tick()
        if check is not None:
            args = check(skip, args, kwargs)
        return sized(func(*args, **kwargs))

    return filtered


def _widths(skip: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    _check_widths((*args[skip:], *kwargs.values()))
    return args


def _format(skip: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if len(args) >= skip:
        _check_format(args[skip - 1])
    return _widths(skip, args, kwargs)


def _join(skip: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """join(eval_ctx, value, d=''): the items listed first, to size the result."""
    if len(args) < skip:
        return args
    items = list(args[skip - 1])
    separator = args[skip] if len(args) > skip else kwargs.get("d", "")
    if _length(separator) * len(items) > MAX_VALUE_BYTES:
        raise RenderLimit(f"joining would build more than {MAX_VALUE_BYTES:,} characters")
    return (*args[:skip - 1], items, *args[skip:])


def _replace(skip: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """replace(eval_ctx, s, old, new, count=None)."""
    if len(args) > skip + 1:
        text, old, new = str(args[skip - 1]), str(args[skip]), str(args[skip + 1])
        growth = (len(text) + 1) * len(new) if not old else len(text) // len(old) * max(len(new) - len(old), 0)
        if len(text) + growth > MAX_VALUE_BYTES:
            raise RenderLimit(f"replacing would build more than {MAX_VALUE_BYTES:,} characters")
    return args


def _short(skip: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """wordwrap and urlize take about a second per megabyte, in one step: their input is bounded."""
    if len(args) >= skip and _length(args[skip - 1]) > SLOW_FILTER_INPUT:
        raise RenderLimit(f"wordwrap and urlize take at most {SLOW_FILTER_INPUT:,} characters")
    return _widths(skip, args, kwargs)


_FILTER_CHECKS: dict[str, Callable[[int, tuple[Any, ...], dict[str, Any]], tuple[Any, ...]]] = {
    **{name: _widths for name in WIDTH_FILTERS}, "format": _format, "join": _join, "replace": _replace,
    "wordwrap": _short, "urlize": _short,
}


class MissingVariable(StrictUndefined):
    """StrictUndefined whose error carries the missing name and where it was looked up."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:
        if self._undefined_exception is not UndefinedError:  # the sandbox's SecurityError
            return super()._fail_with_undefined_error(*args, **kwargs)
        raise UndefinedVariable(self._undefined_message, self._undefined_name, self._undefined_obj)

    # StrictUndefined binds these to its base's method: rebind them to the one above.
    __iter__ = __str__ = __len__ = _fail_with_undefined_error
    __eq__ = __ne__ = __bool__ = __hash__ = _fail_with_undefined_error
    __contains__ = __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _fail_with_undefined_error
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _fail_with_undefined_error
    __pos__ = __neg__ = __call__ = __getitem__ = __lt__ = __le__ = __gt__ = __ge__ = _fail_with_undefined_error
    __int__ = __float__ = __complex__ = __pow__ = __rpow__ = _fail_with_undefined_error


class UndefinedVariable(UndefinedError):
    def __init__(self, message: str, name: str | None, owner: Any) -> None:
        super().__init__(message)
        self.name = name
        self.owner = owner  # the object the name was looked up on; Undefined's `missing` at top level


class _Rewrite(NodeTransformer):
    """Loops through `guarded`, concatenations (`~`) through `sized`; no include/extends/import."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _call("guarded", node.iter)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _call("sized", node)

    def generic_visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        if isinstance(node, (nodes.Include, nodes.Extends, nodes.Import, nodes.FromImport)):
            raise TemplateSyntaxError(
                "include, extends and import are not available: a template is one document", node.lineno
            )
        return super().generic_visit(node, *args, **kwargs)


def _call(function: str, argument: nodes.Expr) -> nodes.Call:
    return nodes.Call(nodes.ImportedName(f"{__name__}.{function}"), [argument], [], None, None,
                      lineno=argument.lineno)


class TemplateEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(autoescape=autoescape, undefined=MissingVariable, keep_trailing_newline=True)
        self.globals = {"range": bounded_range, "dict": dict, "cycler": self.globals["cycler"],
                        "joiner": self.globals["joiner"], "namespace": self.globals["namespace"]}
        self.filters = {name: _guard_filter(name, func) for name, func in self.filters.items()}

    def compile_template(self, source: str) -> Any:
        """The compiled template; TemplateSyntaxError (with its line) when it is not valid."""
        tree = _Rewrite().visit(self.parse(source))
        tree.set_environment(self)
        return self.from_string(tree)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr not in STR_METHODS:
            return False
        return bool(super().is_safe_attribute(obj, attr, value))

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        _tick()
        _check_binop(operator_, left, right)
        return sized(_BINOPS[operator_](left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's signature)
        _tick()
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_format(value.__self__)
            return sized(wrapped(*args, **kwargs))  # type: ignore[no-any-return]

        return checked


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {"*": operator.mul, "**": operator.pow, "+": operator.add,
                                                  "%": operator.mod}
