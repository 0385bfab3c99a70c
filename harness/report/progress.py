"""Live progress of the suites: each case as it finishes, for a person at a terminal.

``scenarios[sysctl=1] 7/27 zombie_file ok 0:58`` -- the suite, the case's position out
of the cases the suite is expected to report (the inventory, else the program's plan),
its name and outcome, and how long it took (since the previous case finished, or since
the suite started).  Fed line by line with the program's KTAP output as the guest prints
it (:meth:`harness.stages.ssh.Guest.run`'s ``on_line``).  Not on a terminal, it prints
nothing: the suite's one log line at its end (harness.stages.suites) says it all.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

from harness.parse.ktap import CaseStatus, top_level_plan, top_level_result

_WORD = {CaseStatus.PASS: "ok", CaseStatus.FAIL: "FAIL", CaseStatus.XPASS: "XPASS",
         CaseStatus.TIMEOUT: "TIMEOUT", CaseStatus.ERROR: "ERROR"}


def mmss(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class CaseProgress:
    """One suite's cases as they finish (see the module's doc)."""

    def __init__(self, suite: str, expected: int | None, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic, tty: bool | None = None):
        self.suite = suite
        self.expected = expected or None
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock = clock
        self.last_at = clock()
        self.done = 0
        self.lines: list[str] = []  # what was printed (also when not on a terminal)

    def line(self, text: str) -> None:
        if self.expected is None:
            plan = top_level_plan(text)
            if plan:
                self.expected = plan
        res = top_level_result(text)
        if res is None:
            return
        _, name, status = res
        now = self.clock()
        self.done += 1
        word = _WORD.get(status, status.value)
        out = (f"{self.suite} {self.done}/{self.expected or '?'} {name} {word} "
               f"{mmss(now - self.last_at)}")
        self.last_at = now
        self.lines.append(out)
        if self.tty:
            self.stream.write(out + "\n")
            self.stream.flush()
