"""Settings of open and click tracking (docs/tracking.md), a mixin of
core.settings.Settings (POSTWIRE_TRACKING_* like every other setting, documented in
docs/settings.md and printed by `postwire config`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class TrackingSettings(BaseSettings):
    """The tracking handler's part of Settings."""

    # Open and click tracking
    tracking_host: str = Field(
        "127.0.0.1", description="Address the tracking HTTP handler (`/t/o/...`, `/t/c/...`, behind Envoy) binds to."
    )
    tracking_port: int = Field(
        8090, ge=0, description="Port of the tracking handler, served by every server process (SO_REUSEPORT);"
        " Envoy routes `/t/` there. 0 turns it off."
    )
    tracking_base_url: str = Field(
        "",
        pattern=r"^(|https?://\S+)$",
        description="Base URL of the tracking links and pixel (`https://t.example.com`); empty: POSTWIRE_PUBLIC_URL."
        " With neither, emails go out untracked.",
    )
    tracking_text_links: bool = Field(
        False, description="Also rewrite the http(s) links of the text part when click tracking is on (off: the"
        " text part is sent as written; long tracking URLs in plain text look suspicious to readers).",
    )
    tracking_per_ip_per_minute: int = Field(
        600, ge=0, description="Tracking hits one client address may make per minute per server process; past it"
        " the pixel and redirects are still answered but nothing is recorded. 0: no limit.",
    )

    def tracking_url(self, public_url: str) -> str:
        """The base URL tracking links point at ("" when tracking cannot work)."""
        return (self.tracking_base_url or public_url).rstrip("/")
