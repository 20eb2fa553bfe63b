"""Use cases behind TemplateService: create, get, list, update (a new version), delete,
list versions, activate a version, render a preview; and `for_send`, the lookup of the
accept path, served from two caches: the account's active versions (PerAccount, a few
seconds: another server process sees an activation or a deletion within `lookup_ttl`)
and the compiled versions (CompiledCache: versions never change)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from core.emails.addresses import has_control_chars
from core.errors import FieldViolation, InvalidArgument, NotFound
from core.ids import new_template_id
from core.per_account import PerAccount
from core.storage.db import database_errors_as_unavailable
from core.templates import pages, variants
from core.templates.limits import MAX_NAME, MAX_VERSION_BYTES
from core.templates.model import Content, Parts, TemplateRecord, Variant, Version
from core.templates.render import CompiledCache, CompiledVersion, check_variables, compile_parts, render
from core.templates.store import TemplateStore
from core.times import utcnow

DEFAULT_PAGE, MAX_PAGE = 50, 1000
LOOKUP_TTL = 2.0  # seconds the Send path trusts its copy of an account's active versions


def check_name(name: str, *, required: bool) -> str:
    name = name.strip()
    if required and not name:
        raise InvalidArgument([FieldViolation("name", "required: a name for the template")])
    if len(name) > MAX_NAME:
        raise InvalidArgument([FieldViolation("name", f"at most {MAX_NAME} characters")])
    if has_control_chars(name):
        raise InvalidArgument([FieldViolation("name", "must not contain control characters")])
    return name


def check_content(parts: Parts, given: Sequence[Variant]) -> Content:
    """The version's content, its parts compiled once to report every syntax error
    (with its field and line) and every bound passed."""
    violations: list[FieldViolation] = []
    checked = variants.check(given, violations)
    if given:
        for name in ("subject", "html", "text"):
            if getattr(parts, name):
                violations.append(FieldViolation(name, "leave empty when giving variants: each variant has its own"))
        for index, variant in enumerate(checked):
            compile_parts(variant.parts, f"variants[{index}].", violations)
    else:
        if not parts.html and not parts.text:
            violations.append(FieldViolation("html", "give an html part, a text part or both"))
        compile_parts(parts, "", violations)
    size = parts.size() + sum(v.parts.size() for v in given)
    if size > MAX_VERSION_BYTES:
        violations.append(FieldViolation("variants" if given else "html", (
            f"the version's parts total {size:,} bytes; the limit is {MAX_VERSION_BYTES:,}"
        )))
    if violations:
        raise InvalidArgument(violations)
    return Content(Parts() if given else parts, checked)


def _check_id(template_id: str, field: str = "template_id") -> None:
    if not template_id:
        raise InvalidArgument([FieldViolation(field, "required: the template's id (tpl_...)")])


def _check_version(version: int, field: str = "version") -> None:
    if version < 0:
        raise InvalidArgument([FieldViolation(field, "a version number (1, 2, ...), or 0 for the active version")])


class TemplateManager:
    def __init__(self, store: TemplateStore, cache: CompiledCache | None = None, lookup_ttl: float = LOOKUP_TTL) -> None:
        self.store = store
        self.cache = cache or CompiledCache()
        self.active: PerAccount[dict[str, int]] = PerAccount(store.active_versions, lookup_ttl)

    async def create(self, account_id: int, name: str, parts: Parts, given: Sequence[Variant] = ()) -> TemplateRecord:
        name, content = check_name(name, required=True), check_content(parts, given)
        async with database_errors_as_unavailable():
            record = await self.store.create(account_id, new_template_id(), name, content, utcnow())
        self.active.forget(account_id)
        return record

    async def get(self, account_id: int, template_id: str, version: int = 0) -> TemplateRecord:
        _check_id(template_id)
        _check_version(version)
        async with database_errors_as_unavailable():
            found = await self.store.get(account_id, template_id, version)
        if found is None:
            raise NotFound(f"no template {template_id!r}")
        record, stored = found
        if stored is None:
            raise NotFound(f"template {template_id} has no version {version}")
        return dataclasses.replace(record, version=stored)

    async def list(self, account_id: int, page_size: int = 0, page_token: str = "") -> tuple[list[TemplateRecord], str]:
        if page_size < 0:
            raise InvalidArgument([FieldViolation("page_size", "must not be negative")])
        after = pages.templates_position(account_id, page_token) if page_token else None
        limit = min(page_size or DEFAULT_PAGE, MAX_PAGE)
        async with database_errors_as_unavailable():
            records = await self.store.list(account_id, after, limit + 1)
        if len(records) <= limit:
            return records, ""
        last = records[limit - 1]
        return records[:limit], pages.templates_token(account_id, last.created_at, last.template_id)

    async def update(self, account_id: int, template_id: str, name: str, parts: Parts, given: Sequence[Variant] = (),
                     *, activate: bool = True) -> TemplateRecord:
        """A new version (activated unless `activate` is False); a new name when given."""
        _check_id(template_id)
        name, content = check_name(name, required=False), check_content(parts, given)
        async with database_errors_as_unavailable():
            record = await self.store.add_version(account_id, template_id, name, content, activate, utcnow())
        if record is None:
            raise NotFound(f"no template {template_id!r}")
        self.active.forget(account_id)
        return record

    async def delete(self, account_id: int, template_id: str) -> None:
        _check_id(template_id)
        async with database_errors_as_unavailable():
            deleted = await self.store.delete(account_id, template_id)
        if not deleted:
            raise NotFound(f"no template {template_id!r}")
        self.active.forget(account_id)
        self.cache.forget(template_id)

    async def versions(self, account_id: int, template_id: str, page_size: int = 0,
                       page_token: str = "") -> tuple[TemplateRecord, list[Version], str]:
        _check_id(template_id)
        if page_size < 0:
            raise InvalidArgument([FieldViolation("page_size", "must not be negative")])
        before = pages.versions_before(account_id, template_id, page_token) if page_token else 0
        limit = min(page_size or DEFAULT_PAGE, MAX_PAGE)
        async with database_errors_as_unavailable():
            found = await self.store.versions(account_id, template_id, before, limit + 1)
        if found is None:
            raise NotFound(f"no template {template_id!r}")
        record, listed = found
        if len(listed) <= limit:
            return record, listed, ""
        return record, listed[:limit], pages.versions_token(account_id, template_id, listed[limit - 1].version)

    async def activate(self, account_id: int, template_id: str, version: int) -> TemplateRecord:
        _check_id(template_id)
        if version < 1:
            raise InvalidArgument([FieldViolation("version", "a version number: 1, 2, ...")])
        async with database_errors_as_unavailable():
            record, exists = await self.store.activate(account_id, template_id, version, utcnow())
        if record is None:
            raise NotFound(f"no template {template_id!r}")
        if not exists:
            raise NotFound(f"template {template_id} has no version {version} (its latest is {record.latest_version})")
        self.active.forget(account_id)
        return record

    async def render(self, account_id: int, template_id: str, version: int, variant: str,
                     variables: dict[str, Any]) -> tuple[Parts, int, str]:
        """A preview: the rendered parts, the version and the variant (the first one when
        `variant` is empty). Reads the database, not the Send path's caches."""
        check_variables(variables)
        record = await self.get(account_id, template_id, version)
        assert record.version is not None
        compiled = self.cache.compiled(template_id, record.version.version, record.version.content)
        chosen = variants.named(compiled.choices(), variant)
        if chosen is None:
            names = ", ".join(v.name for v in compiled.choices()) or "none"
            raise InvalidArgument([FieldViolation("variant", f"version {record.version.version} has no variant "
                                                             f"{variant!r} (it has: {names})")])
        return render(compiled.compiled(chosen), variables), record.version.version, chosen.name

    async def for_send(self, account_id: int, template_id: str, version: int) -> CompiledVersion:
        """The compiled version a Send renders (0: the active one); InvalidArgument on
        template_id or template_version when the account has no such template or version."""
        _check_version(version, "template_version")
        async with database_errors_as_unavailable():
            active = (await self.active.get(account_id)).get(template_id)
            if active is None:  # perhaps created on another server process since the map was read
                active = (await self.active.get(account_id, as_of=utcnow())).get(template_id)
        if active is None:
            raise InvalidArgument([FieldViolation("template_id", f"no template {template_id!r} in this account")])
        wanted = version or active
        cached = self.cache.get(template_id, wanted)
        if cached is not None:
            return cached
        async with database_errors_as_unavailable():
            content = await self.store.content(account_id, template_id, wanted)
        if content is None:
            raise InvalidArgument([FieldViolation("template_version", f"template {template_id} has no version {wanted}")])
        return self.cache.compiled(template_id, wanted, content)
