"""The kernel log of a run, scanned for findings per (suite, case) for the report.

The guest's ``dmesg.log`` is the source, unless its ring buffer wrapped (it lost the
boot banner that the serial console still has) or the guest died before dmesg was
collected: then the console (``vm/console.log``) is; with ``--parallel``, those of each
guest (``guest-K/``).  The patterns are in
:mod:`harness.parse.logscan`; ``logscan.ignore`` in the project silences known ones.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.parse import logscan

log = logging.getLogger(__name__)

#: (suite, case) -> findings, as harness.parse.logscan.scan_by_case returns them
Findings = dict[tuple[str, str], list[logscan.Finding]]


def log_buffer_wrapped(dmesg: Path, console: Path) -> bool:
    """dmesg lacks the boot banner that the console has: its start was overwritten."""
    banner = "Linux version "
    try:
        with open(dmesg, encoding="utf-8", errors="replace") as f:
            if any(banner in line for line, _ in zip(f, range(50))):
                return False
        with open(console, encoding="utf-8", errors="replace") as f:
            return any(banner in line for line in f)
    except OSError:
        return False


def kernel_log_source(run_dir: Path) -> Path | None:
    """The file to scan: dmesg, or the console when dmesg is missing or wrapped."""
    src = run_dir / "dmesg.log"
    console = run_dir / "vm" / "console.log"
    if not src.is_file():
        src = console
    elif console.is_file() and log_buffer_wrapped(src, console):
        # The ring buffer (LOG_BUF_SHIFT) lost the start of the log, markers included:
        # findings would land in the wrong suite. The serial console has it all.
        log.info("kernel log: dmesg lost its start (ring buffer wrapped); using %s", console)
        src = console
    return src if src.is_file() else None


def scan(run_dir: Path, project: Path,
         guests: Sequence[str] = ()) -> tuple[Findings | None, dict[str, Any]]:
    """(findings per (suite, case) or None when there is no log, the ``kernel_log`` group
    of the run record).  ``guests``: the guests' directories of a ``--parallel`` run
    (``guest-K/dmesg.log``, ``guest-K/vm/console.log``): each one's log is scanned and
    its findings name the guest (in the title and the record)."""
    ignore_file = project / "logscan.ignore"
    ignore = logscan.load_ignore(ignore_file) if ignore_file.is_file() else []
    sources: dict[str, str] = {}
    findings: Findings = {}
    records: list[dict[str, str]] = []
    for guest in guests or ("",):
        src = kernel_log_source(run_dir / guest if guest else run_dir)
        if src is None:
            continue
        sources[guest] = str(src)
        found = logscan.scan_by_case(src.read_text(encoding="utf-8", errors="replace"), ignore)
        for key, fs in found.items():
            if guest:
                fs = [dataclasses.replace(f, title=f"{f.title} [{guest}]") for f in fs]
            findings.setdefault(key, []).extend(fs)
            records += [{"suite": key[0], "case": key[1], "kind": f.kind, "signature": f.signature,
                         **({"guest": guest} if guest else {})} for f in fs]
    if not sources:
        return None, {}
    bad = [f for fs in findings.values() for f in fs if logscan.is_failure(f)]
    if bad:
        log.error("kernel log: %d finding(s), first: %s", len(bad), bad[0].signature)
    group: dict[str, Any] = {"source": ", ".join(sources.values())}
    if guests:
        group["sources"] = sources
    return findings, {**group, "findings": records}
