"""SendRequest's `track_opens` / `track_clicks` as validate_send's keyword arguments
(unset: None, the account's default decides at delivery; core/tracking/apply.py)."""

from __future__ import annotations

from postwire.v1 import email_service_pb2 as pb


def tracking_fields(request: pb.SendRequest) -> dict[str, bool | None]:
    return {
        "track_opens": request.track_opens if request.HasField("track_opens") else None,
        "track_clicks": request.track_clicks if request.HasField("track_clicks") else None,
    }
