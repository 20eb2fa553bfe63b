"""SendRequest's `track_opens` / `track_clicks` onto the validated content (unset:
None, the account's default decides at delivery; core/tracking/apply.py)."""

from __future__ import annotations

import dataclasses

from core.emails.content import EmailContent
from postwire.v1 import email_service_pb2 as pb


def with_tracking(content: EmailContent, request: pb.SendRequest) -> EmailContent:
    opens = request.track_opens if request.HasField("track_opens") else None
    clicks = request.track_clicks if request.HasField("track_clicks") else None
    if opens is None and clicks is None:
        return content
    return dataclasses.replace(content, track_opens=opens, track_clicks=clicks)
