"""SMTP transport: hands rendered bytes to the configured relay with aiosmtplib."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import aiosmtplib

from core.settings import Settings


@dataclass(frozen=True)
class Accepted:
    """The relay's reply to DATA, and recipients it refused while taking the rest."""

    code: int
    message: str
    refused: dict[str, tuple[int, str]]


class SmtpTransport:
    def __init__(self, settings: Settings) -> None:
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.username = settings.smtp_username
        self.password = settings.smtp_password.get_secret_value()
        self.mode = settings.smtp_tls
        self.timeout = settings.smtp_timeout
        if self.mode not in ("none", "starttls", "implicit"):
            raise ValueError("smtp_tls must be none, starttls or implicit")
        self.tls_context = ssl.create_default_context() if self.mode != "none" else None

    async def send(self, sender: str, recipients: list[str], data: bytes) -> Accepted:
        """One SMTP transaction; raises aiosmtplib errors or OSError on failure."""
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=self.timeout,
            use_tls=self.mode == "implicit",
            start_tls=self.mode == "starttls",
            tls_context=self.tls_context,
        )
        async with client:
            if self.username:
                await client.login(self.username, self.password)
            refused, reply = await client.sendmail(sender, recipients, data)
        # sendmail() returns DATA's reply text only; reaching here means a 2xx code.
        return Accepted(
            code=250,
            message=reply,
            refused={r: (e.code, e.message) for r, e in refused.items()},
        )
