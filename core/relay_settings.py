"""One SMTP relay's settings (a list of them is POSTWIRE_SMTP_RELAYS)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class RelaySettings(BaseModel):
    """One SMTP relay. POSTWIRE_SMTP_RELAYS takes a JSON list of these, in priority order."""

    host: str = Field(description="Relay host name or address. Required.")
    port: int = Field(25, description="Relay port (587 for submission with STARTTLS, 465 for implicit TLS).")
    tls: str = Field("none", description="`none`, `starttls` or `implicit`; certificates are verified.")
    username: str = Field("", description="SMTP AUTH user name (AUTH only when set).")
    password: SecretStr = Field(SecretStr(""), description="SMTP AUTH password.")
    ca_file: str = Field("", description="CA bundle for a private relay's certificate (PEM).")
    timeout: float = Field(30.0, description="Seconds for connect and for each SMTP command.")

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"
