"""The inbound report fixtures (tests/fixtures/reports/*.eml) with their placeholders
filled in: the VERP return path the report comes back to, the recipients it names and
the original's message id.

    {{RETURN_PATH}}    b+<token>@<bounce domain> (the envelope sender Postwire used)
    {{BOUNCE_DOMAIN}}  its domain (fbl@ / abuse@ reports are addressed there)
    {{RECIPIENT}}, {{RECIPIENT2}}, {{RECIPIENT3}}   the recipients the report names
    {{MESSAGE_ID}}     the original email's id
"""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.eml"))


def report(name: str, return_path: str = "b+token@bounces.example.com", recipient: str = "ada@example.org",
           recipient2: str = "bob@example.org", recipient3: str = "cy@example.org", message_id: str = "msg_x") -> bytes:
    raw = (FIXTURES / f"{name}.eml").read_bytes()
    values = {
        "RETURN_PATH": return_path, "BOUNCE_DOMAIN": return_path.rpartition("@")[2], "RECIPIENT": recipient,
        "RECIPIENT2": recipient2, "RECIPIENT3": recipient3, "MESSAGE_ID": message_id,
    }
    for key, value in values.items():
        raw = raw.replace(b"{{" + key.encode() + b"}}", value.encode())
    return raw
