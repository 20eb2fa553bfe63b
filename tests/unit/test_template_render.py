"""Template compiling and rendering (core.templates): autoescaping, StrictUndefined
errors naming the variable, syntax errors with their line, sandbox escapes refused, and
runaway templates stopped quickly by the render budget; the compiled cache, A/B picking
and the content checks of create/update."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from core.errors import InvalidArgument
from core.templates import variants
from core.templates.limits import MAX_VERSION_BYTES
from core.templates.manager import check_content
from core.templates.model import Content, Parts, Variant
from core.templates.render import CompiledCache, compile_parts, render


def rendered(html: str = "", *, subject: str = "", text: str = "", **variables: object) -> Parts:
    return render(compile_parts(Parts(subject, html, text)), variables)


def refusal(html: str, **variables: object) -> tuple[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        rendered(html, **variables)
    [violation] = caught.value.violations
    return violation.field, violation.description


def test_html_is_autoescaped_and_subject_and_text_are_not() -> None:
    parts = rendered("<p>{{ name }}</p>", subject="  Hi {{ name }}\n", text="Hi {{ name }} & co", name="<Ada & Bob>")
    assert parts.html == "<p>&lt;Ada &amp; Bob&gt;</p>"
    assert parts.subject == "Hi <Ada & Bob>"  # surrounding whitespace stripped
    assert parts.text == "Hi <Ada & Bob> & co"


def test_loops_filters_and_conditions_render() -> None:
    html = "{% for item in items %}{{ loop.index }}. {{ item.name|title }} {{ '%.2f'|format(item.price) }}\n{% endfor %}" \
           "{% if vip is defined and vip %}VIP{% endif %}{{ missing|default('-') }}"
    parts = rendered(html, items=[{"name": "tea", "price": 3}, {"name": "cake", "price": 4.5}])
    assert parts.html == "1. Tea 3.00\n2. Cake 4.50\n-"


def test_a_missing_variable_is_named_in_the_field_violation() -> None:
    field, description = refusal("<p>Hello {{ first_name }}</p>")
    assert field == "variables.first_name"
    assert "first_name" in description and "html, line 1" in description


def test_a_missing_nested_variable_is_named_with_its_path() -> None:
    field, _ = refusal("line one\n{{ user.address.city }}", user={"address": {"street": "Main"}})
    assert field == "variables.user.address.city"


def test_a_syntax_error_names_the_part_and_its_line() -> None:
    with pytest.raises(InvalidArgument) as caught:
        compile_parts(Parts("ok {{ a }}", "<p>\n\n{% for x in %}</p>", "{{ b }"))
    found = {v.field: v.description for v in caught.value.violations}
    assert set(found) == {"html", "text"}
    assert found["html"].startswith("line 3:")
    assert found["text"].startswith("line 1:")


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ name.__class__ }}",
    "{{ [].append(1) }}",
    "{{ {}.update(a=1) }}",
    "{{ name.center(1000000000) }}",
    "{{ lipsum(100000) }}",
])
def test_sandbox_escapes_are_refused(source: str) -> None:
    field, description = refusal(source, name="x")
    assert field in ("template_id", "variables.lipsum")
    assert description


def test_include_extends_and_import_are_refused_at_compile_time() -> None:
    for source in ("{% include 'x.html' %}", "{% extends 'base.html' %}", "{% import 'm.html' as m %}"):
        with pytest.raises(InvalidArgument, match="not available"):
            compile_parts(Parts(html=source))


def test_range_of_a_billion_is_refused() -> None:
    field, description = refusal("{% for i in range(10**9) %}{{ i }}{% endfor %}")
    assert field == "template_id" and "range() of 1,000,000,000 items" in description


@pytest.mark.parametrize("source", [
    # 10^8 iterations, no output: minutes without the budget
    "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
    # the same with output
    "{% for a in range(10000) %}{% for b in range(10000) %}{{ b }}{% endfor %}{% endfor %}",
    # exponential recursion, no loop at all
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}",
    # a list variable iterated within itself
    "{% for a in items %}{% for b in items %}{% for c in items %}.{% endfor %}{% endfor %}{% endfor %}",
])
def test_a_template_that_loops_too_long_is_stopped_quickly(source: str) -> None:
    started = time.monotonic()
    field, description = refusal(source, items=list(range(5000)))
    assert time.monotonic() - started < 2
    assert field == "template_id" and "stopped after" in description


@pytest.mark.parametrize("source", [
    "{{ 'x' * 10**9 }}",
    "{{ [1] * 10**9 }}",
    "{{ 2 ** (10 ** 9) }}",
    "{{ (10 ** 1000) * (10 ** 1000) * (10 ** 1000) * (10 ** 1000) }}",
    "{{ 'x'|center(10**9) }}",
    "{{ 'x'|indent(10**9) }}",
    "{{ '%999999999s'|format('x') }}",
    "{{ '{:>999999999}'.format('x') }}",
    "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "{{ ('x' * 1000000)|replace('', 'yy') }}",
    "{{ range(10000)|join('x' * 100000) }}",
])
def test_huge_values_are_refused_before_they_are_built(source: str) -> None:
    started = time.monotonic()
    field, _ = refusal(source)
    assert field == "template_id" and time.monotonic() - started < 1


def test_slow_text_filters_take_bounded_input() -> None:
    for source in ("{{ big|wordwrap(1) }}", "{{ big|urlize }}"):
        started = time.monotonic()
        field, description = refusal(source, big="word " * 100_000)
        assert field == "template_id" and "at most 100,000 characters" in description
        assert time.monotonic() - started < 0.5


def test_a_recursive_loop_that_never_ends_is_stopped() -> None:
    field, _ = refusal("{% for x in items recursive %}{{ loop(items) }}{% endfor %}", items=list(range(50)))
    assert field == "template_id"


def test_output_past_the_limit_is_stopped() -> None:
    field, description = refusal("{% for i in range(9000) %}{{ big }}{% endfor %}", big="x" * 1000)
    assert field == "template_id" and "rendered parts pass" in description


def test_other_errors_in_a_template_are_invalid_argument_with_the_line() -> None:
    field, description = refusal("a\n{{ 1 // zero }}", zero=0)
    assert field == "template_id" and "line 2" in description


def test_the_cache_compiles_a_version_once_and_drops_the_least_recently_used() -> None:
    cache = CompiledCache(size=2)
    content = Content(Parts("s", "<p>{{ a }}</p>", ""))
    first = cache.compiled("tpl_a", 1, content)
    assert cache.compiled("tpl_a", 1, content) is first
    cache.compiled("tpl_b", 1, content)
    cache.get("tpl_a", 1)  # used: tpl_b is now the oldest
    cache.compiled("tpl_c", 1, content)
    assert cache.get("tpl_b", 1) is None and cache.get("tpl_a", 1) is first
    cache.forget("tpl_a")
    assert cache.get("tpl_a", 1) is None


def test_variants_are_picked_by_weight() -> None:
    choices = (Variant("a", 1, Parts()), Variant("b", 3, Parts()))
    assert variants.pick(choices, 0.0).name == "a" and variants.pick(choices, 0.24).name == "a"
    assert variants.pick(choices, 0.26).name == "b" and variants.pick(choices, 0.999).name == "b"
    counts = Counter(variants.pick(choices).name for _ in range(4000))
    assert 800 < counts["a"] < 1200


def test_content_checks_report_every_problem() -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_content(Parts(subject="s"), [Variant("a", 1, Parts(html="{% if %}")), Variant("a", -1, Parts()),
                                           Variant("bad name", 1, Parts(text="t"))])
    fields = {v.field for v in caught.value.violations}
    assert fields == {"subject", "variants[0].html", "variants[1].name", "variants[1].weight", "variants[1].html",
                      "variants[2].name"}
    with pytest.raises(InvalidArgument, match="give an html part"):
        check_content(Parts(subject="only a subject"), [])
    with pytest.raises(InvalidArgument, match="limit is"):
        check_content(Parts(html="x" * (MAX_VERSION_BYTES + 1)), [])
    assert check_content(Parts(), [Variant("a", 0, Parts(text="t"))]).variants[0].weight == 1
