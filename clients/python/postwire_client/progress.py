"""Progress of a long CLI run on stderr: count, percentage, rate, failures and ETA.

On a terminal one line is redrawn in place (at most 10 times a second); otherwise (a
log, a pipe) a line is written every `interval` seconds. A summary line always ends
the run:

    sent 420/1000 (42%)  85.1/s  3 failed  eta 7s
    done: 997 sent, 3 failed of 1000 in 11.8 s (84.5/s)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    def __init__(self, total: int, stream: TextIO, *, enabled: bool = True, interval: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.stream = stream
        self.enabled = enabled
        self.tty = enabled and stream.isatty()
        self.interval = 0.1 if self.tty else interval
        self.clock = clock
        self.started = clock()
        self.last_shown = self.started
        self.ok = 0
        self.failed = 0
        self.waiting_until = 0.0

    @property
    def done(self) -> int:
        return self.ok + self.failed

    def rate(self) -> float:
        elapsed = self.clock() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        rate = self.rate()
        percent = 100 * self.done // self.total if self.total else 100
        parts = [f"sent {self.done}/{self.total} ({percent}%)", f"{rate:.1f}/s"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.waiting_until > self.clock():
            parts.append("rate limited, waiting")
        if rate > 0 and self.done < self.total:
            parts.append(f"eta {round((self.total - self.done) / rate)}s")
        return "  ".join(parts)

    def summary(self) -> str:
        elapsed = self.clock() - self.started
        return (f"done: {self.ok} sent, {self.failed} failed of {self.total} in {elapsed:.1f} s"
                f" ({self.rate():.1f}/s)")

    def advance(self, *, ok: bool) -> None:
        if ok:
            self.ok += 1
        else:
            self.failed += 1
        self._maybe_show()

    def throttled(self, seconds: float) -> None:
        """A rate limit answered; requests wait `seconds` before trying again."""
        self.waiting_until = max(self.waiting_until, self.clock() + seconds)
        self._maybe_show()

    def _maybe_show(self) -> None:
        now = self.clock()
        if not self.enabled or now - self.last_shown < self.interval:
            return
        self.last_shown = now
        if self.tty:
            self.stream.write("\r\x1b[K" + self.line())
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if not self.enabled:
            return
        self.stream.write(("\r\x1b[K" if self.tty else "") + self.summary() + "\n")
        self.stream.flush()
