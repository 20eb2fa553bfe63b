"""Settings of the SMTP submission listener (`postwire submission`), a mixin of
core.settings.Settings (so they are POSTWIRE_SUBMISSION_* like every other setting,
documented in docs/settings.md and printed by `postwire config`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class SubmissionSettings(BaseSettings):
    """The submission listener's part of Settings."""

    # SMTP submission
    submission_host: str = Field(
        "127.0.0.1", description="Address the SMTP submission listener (`postwire submission`) binds to."
    )
    submission_port: int = Field(
        587, ge=0, description="Submission port with STARTTLS required before AUTH; 0 turns it off."
    )
    submission_tls_port: int = Field(465, ge=0, description="Submission port with implicit TLS; 0 turns it off.")
    submission_plain_port: int = Field(
        2525, ge=0, description="Submission port starting in plain text, STARTTLS offered (AUTH only after it); 0: off."
    )
    submission_tls_cert: str = Field(
        "", description="PEM certificate (chain) of the submission listener; needed by the 587 and 465 ports."
    )
    submission_tls_key: str = Field("", description="PEM private key of POSTWIRE_SUBMISSION_TLS_CERT.")
    submission_allow_plain_auth: bool = Field(
        False,
        description="Development only: allow AUTH without TLS, for clients on a loopback address only.",
    )
    submission_timeout: float = Field(300.0, gt=0, description="Seconds a submission client may stay silent.")
    submission_metrics_port: int = Field(
        9466, description="The submission listener's Prometheus endpoint (/metrics); 0 turns it off."
        " With several processes, process i serves it on this port + i."
    )
    submission_processes: int = Field(
        1,
        ge=1,
        description="Submission listener processes sharing the ports (SO_REUSEPORT), started and supervised by"
        " `postwire submission`; one process uses about one core.",
    )
