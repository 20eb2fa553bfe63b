"""DKIM signing cost per message, in this process (no stack): N rendered messages of
about 5 KB (text + HTML alternative) signed with core.domains.dkim.sign using RSA-2048,
Ed25519, and both (what a domain with two active keys sends); dkimpy end to end
(its pure-Python RSA, sign_with_dkimpy) on fewer messages. Reference in the same run:
rendering the message itself (core.emails.mime.render). Prints µs of CPU per message
and the ratio to rendering.

    .venv/bin/python bench/dkim_cost.py [-n 2000] [--dkimpy-n 200]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

from core.domains.dkim import ED25519, RSA, SigningKey, generate, sign, sign_with_dkimpy
from core.emails.content import Address, EmailContent
from core.emails.mime import render

DOMAIN = "bench.example.com"
DATE = datetime(2024, 12, 3, 9, 15, tzinfo=UTC)
PARAGRAPH = ("Thanks for your order. Your parcel leaves our warehouse today and should arrive "
             "within three working days; you can follow it with the link below. ")


def content(i: int) -> EmailContent:
    text = (PARAGRAPH * 16) + f"\nOrder {i}\n"
    html = "<html><body>" + f"<p>{PARAGRAPH}</p>\n" * 12 + f"<p>Order <b>{i}</b></p></body></html>\n"
    return EmailContent(
        from_address=Address(f"orders@{DOMAIN}", "Bench Shop"),
        to=(Address(f"customer{i}@example.org", "A Customer"),),
        subject=f"Your order {i} has shipped",
        text_body=text,
        html_body=html,
        headers={"List-Unsubscribe": f"<https://{DOMAIN}/u/{i}>"},
    )


def cpu_us_per_item(items: list[object], work: Callable[[object], object]) -> float:
    work(items[0])  # warm: caches (parsed keys), imports
    start = time.process_time()
    for item in items:
        work(item)
    return (time.process_time() - start) / len(items) * 1e6


def signing(signer: Callable[[bytes, list[SigningKey]], bytes], keys: list[SigningKey]) -> Callable[[object], object]:
    def work(message: object) -> object:
        assert isinstance(message, bytes)
        return signer(message, keys)

    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="messages per row")
    parser.add_argument("--dkimpy-n", type=int, default=200, help="messages for the dkimpy end-to-end rows (slow)")
    args = parser.parse_args()

    rsa_pair, ed_pair = generate(RSA), generate(ED25519)
    rsa_key = SigningKey(DOMAIN, "pw202412rbnch", RSA, rsa_pair.private_pem)
    ed_key = SigningKey(DOMAIN, "pw202412ebnch", ED25519, ed_pair.private_pem)
    contents = [content(i) for i in range(args.n)]
    messages: list[bytes] = [render(c, message_id=f"msg_{i}@{DOMAIN}", date=DATE) for i, c in enumerate(contents)]
    few = messages[: args.dkimpy_n]
    size = sum(map(len, messages)) / len(messages)

    def rendering(c: object) -> object:
        assert isinstance(c, EmailContent)
        return render(c, message_id=f"msg_x@{DOMAIN}", date=DATE)

    rows: list[tuple[str, int, float]] = []
    reference = cpu_us_per_item(list(contents), rendering)
    rows.append(("render (reference)", len(contents), reference))
    for label, keys, batch, signer in (
        ("sign RSA-2048", [rsa_key], messages, sign),
        ("sign Ed25519", [ed_key], messages, sign),
        ("sign RSA-2048 + Ed25519", [rsa_key, ed_key], messages, sign),
        ("dkimpy end to end RSA-2048", [rsa_key], few, sign_with_dkimpy),
        ("dkimpy end to end Ed25519", [ed_key], few, sign_with_dkimpy),
    ):
        rows.append((label, len(batch), cpu_us_per_item(list(batch), signing(signer, keys))))

    print(f"{os.cpu_count()} cores; one thread; messages of {size / 1024:.1f} KB (text + HTML, List-Unsubscribe)")
    print(f"{'':28} {'messages':>8} {'µs CPU/msg':>11} {'vs render':>10}")
    for label, count, us in rows:
        print(f"{label:28} {count:>8} {us:>11.0f} {us / reference:>10.2f}")
    ours = {label: us for label, _, us in rows}
    print(f"RSA-2048: dkimpy end to end / sign() (cryptography signing step): "
          f"{ours['dkimpy end to end RSA-2048'] / ours['sign RSA-2048']:.1f}x")


if __name__ == "__main__":
    main()
