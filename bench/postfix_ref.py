"""Reference MTA: Postfix on loopback relaying to smtp-sink, with its default durability
(queue files fsynced). smtp-source injects N messages; the figure is messages relayed
per second from the first injection until Postfix's queue is empty.

Configures the machine's Postfix (installed by `scripts/ensure-services.sh
--with-postfix`) for loopback only with the sink as relayhost, starts it, and stops it
again afterwards.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _run(*args: str) -> str:
    return subprocess.run(list(args), check=True, capture_output=True, text=True).stdout


def queue_empty() -> bool:
    return "Mail queue is empty" in subprocess.run(["postqueue", "-p"], capture_output=True, text=True).stdout


@contextmanager
def postfix_running(sink_port: int, *settings: str) -> Iterator[None]:
    """The machine's Postfix configured for loopback only with the sink as relayhost (plus
    `settings`, postconf `name=value`), its queue emptied, started; stopped afterwards."""
    if shutil.which("postconf") is None:
        raise RuntimeError("Postfix is not installed: bash scripts/ensure-services.sh --with-postfix")
    main_cf = Path("/etc/postfix/main.cf")
    if not main_cf.exists():  # installed with "No configuration": start from Debian's template
        shutil.copy(main_cf.with_name("main.cf.proto"), main_cf)
        _run(
            "postconf", "-e",
            "setgid_group=postdrop", "mail_owner=postfix", "sendmail_path=/usr/sbin/sendmail",
            "mailq_path=/usr/bin/mailq", "newaliases_path=/usr/bin/newaliases", "html_directory=no",
            "manpage_directory=/usr/share/man", "readme_directory=no", "sample_directory=/etc/postfix",
        )
    _run(
        "postconf", "-e",
        "myhostname=localhost.localdomain",
        "maillog_file=/var/log/postfix.log",
        "inet_interfaces=loopback-only",
        "inet_protocols=ipv4",
        "mydestination=",
        f"relayhost=[127.0.0.1]:{sink_port}",
        "mynetworks=127.0.0.0/8",
        "smtp_tls_security_level=none",
        "default_destination_concurrency_limit=20",
        *DEFAULTS,
        *settings,
    )
    subprocess.run(["postfix", "stop"], capture_output=True)
    subprocess.run(["postsuper", "-d", "ALL"], capture_output=True)
    subprocess.run(["postsuper", "-d", "ALL", "hold"], capture_output=True)
    _run("postfix", "start")
    try:
        time.sleep(1.0)
        yield
    finally:
        subprocess.run(["postfix", "stop"], capture_output=True)
        subprocess.run(["postsuper", "-d", "ALL"], capture_output=True)


# What another run may have set (postfix_running's `settings`), back to Postfix's defaults.
DEFAULTS = (
    "smtpd_recipient_restrictions=",
    "smtpd_tls_security_level=",
    "smtpd_tls_cert_file=",
    "smtpd_tls_key_file=",
    "smtpd_client_connection_count_limit=50",
    "default_process_limit=100",
)


def postfix_relay_rate(n: int, size: int, sink_port: int, smtp_port: int = 25) -> float:
    with postfix_running(sink_port):
        source = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
        start = time.perf_counter()
        subprocess.run(
            [source, "-s", "16", "-m", str(n), "-l", str(size), "-f", "bench@example.com", "-t", "rcpt@example.com",
             f"127.0.0.1:{smtp_port}"],
            check=True,
        )
        deadline = time.monotonic() + 600
        while not queue_empty():
            if time.monotonic() > deadline:
                raise RuntimeError("Postfix did not drain its queue within 10 minutes")
            time.sleep(0.1)
        return n / (time.perf_counter() - start)
