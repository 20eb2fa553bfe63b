"""The content of an email as the domain sees it: validated, ready to render."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Address:
    """One mailbox: `email` is the addr-spec, `name` the optional display name."""

    email: str
    name: str = ""

    def __str__(self) -> str:  # for logs and simple display only; MIME uses core.mime
        return f"{self.name} <{self.email}>" if self.name else self.email


@dataclass(frozen=True)
class EmailContent:
    """A validated email. Bcc recipients are envelope-only, never rendered."""

    from_address: Address
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    reply_to: Address | None = None
    subject: str = ""
    text_body: str = ""
    html_body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def recipients(self) -> tuple[Address, ...]:
        """Every envelope recipient: to, cc and bcc."""
        return self.to + self.cc + self.bcc
