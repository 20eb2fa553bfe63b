"""The template flags of the CLI, without a server: `postwire send --template`, `--var`
and `--variables-json` into a SendRequest, and the `postwire templates` parsers."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import json_format

from postwire.v1 import template_pb2
from postwire_client.cli import build_parser
from postwire_client.send_flags import base_request
from postwire_client.template_commands import template_lines, variables


def parse(*argv: str):  # noqa: ANN201
    return build_parser().parse_args(list(argv))


def test_send_with_a_template_carries_its_id_version_and_variables() -> None:
    args = parse("send", "--from", "a@example.com", "--to", "b@example.com", "--template", "tpl_x",
                 "--template-version", "3", "--variables-json", '{"order": {"id": 7}, "name": "json"}',
                 "--var", "name=Ada")
    request = base_request(args)
    assert (request.template_id, request.template_version) == ("tpl_x", 3)
    assert json_format.MessageToDict(request.variables) == {"order": {"id": 7}, "name": "Ada"}  # --var wins
    assert not request.subject and not request.text_body


def test_variables_json_may_come_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "vars.json"
    path.write_text('{"lines": [1, 2]}')
    assert variables(parse("templates", "render", "tpl_x", "--variables-json", f"@{path}")) == {"lines": [1, 2]}
    assert variables(parse("templates", "render", "tpl_x")) is None


@pytest.mark.parametrize(("argv", "message"), [
    (("--var", "novalue"), "--var takes NAME=VALUE"),
    (("--variables-json", "[1]"), "give a JSON object"),
    (("--variables-json", "{oops"), "not JSON"),
])
def test_bad_variables_are_one_clear_error(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        variables(parse("templates", "render", "tpl_x", *argv))


def test_variables_without_a_template_are_refused() -> None:
    args = parse("send", "--from", "a@example.com", "--to", "b@example.com", "--subject", "s", "--text", "t",
                 "--var", "a=b")
    with pytest.raises(SystemExit, match="need --template"):
        base_request(args)


def test_the_templates_commands_parse() -> None:
    assert parse("templates", "create", "--name", "n", "--html-file", "x.html").name == "n"
    assert parse("templates", "update", "tpl_x", "--draft").draft
    assert parse("templates", "activate", "tpl_x", "2").version == 2
    assert parse("templates", "get", "tpl_x", "--version", "4").version == 4
    assert parse("templates", "render", "tpl_x", "--variant", "b").variant == "b"
    with pytest.raises(SystemExit):
        parse("templates", "activate", "tpl_x", "two")


def test_a_template_is_shown_with_its_parts_or_variants() -> None:
    template = template_pb2.Template(template_id="tpl_x", name="n", active_version=1, latest_version=2,
                                     version=template_pb2.TemplateVersion(version=1, active=True, variants=[
                                         template_pb2.TemplateVariant(name="a", weight=2, subject="S")]))
    lines = template_lines(template)
    assert lines[0] == "tpl_x  n" and "version 1 (active)" in lines[2] and "--- variant a (weight 2)" in lines
