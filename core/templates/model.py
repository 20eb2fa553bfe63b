"""What a template is: named, versioned, each version's parts or weighted variants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Parts:
    """Jinja2 sources (or, rendered, the text) of one email: html is autoescaped."""

    subject: str = ""
    html: str = ""
    text: str = ""

    def size(self) -> int:
        return sum(len(p.encode("utf-8", "surrogatepass")) for p in (self.subject, self.html, self.text))


@dataclass(frozen=True)
class Variant:
    """One A/B variant: chosen for a Send with probability weight / total weight."""

    name: str
    weight: int
    parts: Parts


@dataclass(frozen=True)
class Content:
    """A version's content: its own parts, or (A/B testing) variants, never both. Without
    variants a version has one implicit variant, named "" (recorded as no variant)."""

    parts: Parts = Parts()
    variants: tuple[Variant, ...] = ()

    def choices(self) -> tuple[Variant, ...]:
        return self.variants or (Variant("", 1, self.parts),)

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.parts.subject, "html": self.parts.html, "text": self.parts.text,
                "variants": [{"name": v.name, "weight": v.weight, "subject": v.parts.subject, "html": v.parts.html,
                              "text": v.parts.text} for v in self.variants]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Content:
        return cls(Parts(data["subject"], data["html"], data["text"]), tuple(
            Variant(v["name"], int(v["weight"]), Parts(v["subject"], v["html"], v["text"])) for v in data["variants"]
        ))


@dataclass(frozen=True)
class Version:
    version: int
    content: Content
    created_at: datetime


@dataclass(frozen=True)
class TemplateRecord:
    template_id: str  # tpl_...
    name: str
    active_version: int
    latest_version: int
    created_at: datetime
    updated_at: datetime
    version: Version | None = None  # the version asked for (GetTemplate), else None


@dataclass(frozen=True)
class TemplateUse:
    """What a Send rendered, stored on the email (template_id, template_version,
    template_variant) and, with `request`, what its idempotency fingerprint covers
    instead of the rendered parts (so a replay matches while the active version moves)."""

    template_id: str
    version: int
    variant: str  # "" for a version without variants
    request: tuple[str, int, str] = ("", 0, "")  # template_id, version asked (0 = active), variables digest
