"""``--parallel N``: how many guests, and which suites each of them runs.

Every guest of a run boots the same kernel and runs its share of the selected suites
one after the other (harness.modes.parallel); the run takes as long as the busiest
guest.  The shares are made longest first (LPT): each suite, the longest expected
first, goes to the guest with the least expected work so far.  A guest runs its
suites in the order of the selection (the suite table's), as a single guest would.

Expected durations: a suite's duration in the newest earlier run in the same
``--out`` that recorded one (``metadata.json`` ``results.suites``, a suite that
passed or failed, with the same ``--case``, ``--stress-seconds`` and
``--soak-seconds``), else its ``Suite.expected_s`` from the table.

The default N (no ``--parallel``): one guest per host CPU (a TCG guest is one host
thread), at most one per selected suite, and no more than fit in 70% of the host's
memory at ``--memory`` each.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import record
from harness.stages.suitetable import Suite

log = logging.getLogger(__name__)

#: The share of the host's memory the guests may take together (default N).
MEMORY_SHARE = 0.70
#: How many earlier runs of ``--out`` are read for suite durations.
HISTORY_RUNS = 20
#: The options that change how long a suite runs (a run with others is no measure).
_DURATION_OPTIONS = ("cases", "stress_s", "soak_s")


# ------------------------------------------------------------------ how many --


def memory_bytes(text: str) -> int:
    """``3G``, ``1536M``, ``2048`` (MiB, as QEMU's -m) -> bytes."""
    m = re.fullmatch(r"(\d+)([MGmg]?)", text.strip())
    if not m:
        raise ValueError(f"not a memory size: {text!r}")
    unit = 1024 ** 3 if m.group(2).upper() == "G" else 1024 ** 2
    return int(m.group(1)) * unit


def host_cpus() -> int:
    """The CPUs this process may run on (a container's or taskset's share)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def host_memory(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """MemTotal in bytes; None when unknown."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _gib(n: float) -> str:
    return f"{n / 1024 ** 3:.1f}G"


def resolve_parallel(requested: int | None, suites: int, memory: str, *,
                     cpus: int | None = None, mem_total: int | None = None) -> tuple[int, str]:
    """(the number of guests, why): ``--parallel`` as given (at most one guest per
    suite), or the default (see the module's doc).  ``cpus``/``mem_total``: the host's
    (default: this one's)."""
    suites = max(1, suites)
    cpus = cpus if cpus is not None else host_cpus()
    mem_total = mem_total if mem_total is not None else host_memory()
    guest = memory_bytes(memory)
    fit = max(1, int(mem_total * MEMORY_SHARE // guest)) if mem_total else None
    if requested is not None:
        n = min(requested, suites)
        why = f"--parallel {requested}" + (f", {suites} suite(s) selected" if n < requested else "")
        if fit is not None and n > fit:
            log.warning("--parallel %d: %d guests of %s each take more than %.0f%% of the "
                        "host's %s of memory", requested, n, memory, MEMORY_SHARE * 100,
                        _gib(mem_total or 0))
        return n, why
    n = min(cpus, suites)
    why = f"{cpus} host CPU(s), {suites} suite(s) selected"
    if fit is not None and n > fit:
        why += (f"; capped at {fit} by memory: {n} guests of {memory} would exceed "
                f"{MEMORY_SHARE:.0%} of the host's {_gib(mem_total or 0)}")
        n = fit
    return n, why


# ------------------------------------------------------------ how long each --


def _same_options(build: dict[str, Any], options: dict[str, Any]) -> bool:
    opts = build.get("options")
    if not isinstance(opts, dict):
        opts = {}
    for key in _DURATION_OPTIONS:
        mine, theirs = options.get(key), opts.get(key)
        if isinstance(mine, (tuple, list)) or isinstance(theirs, (tuple, list)):
            if list(mine or ()) != list(theirs or ()):
                return False
        elif mine != theirs:
            return False
    return True


def recorded_durations(out: Path, before: Path, names: Sequence[str],
                       options: dict[str, Any]) -> tuple[dict[str, float], str | None]:
    """Durations of ``names`` from the newest run in ``out`` older than ``before`` (a run
    directory of ``out``) that recorded any of them, and which run that was."""
    try:
        cur = int(before.name)
        nums = sorted((int(p.name) for p in out.iterdir() if p.name.isdigit()
                       and int(p.name) < cur), reverse=True)[:HISTORY_RUNS]
    except (OSError, ValueError):
        return {}, None
    for n in nums:
        rec = record.load(out / str(n))
        if not _same_options(rec.group("build"), options):
            continue
        got: dict[str, float] = {}
        for name in names:
            s = rec.suites.get(name) or {}
            d = s.get("duration_s")
            if s.get("status") in ("PASS", "FAIL") and isinstance(d, (int, float)) and d > 0:
                got[name] = float(d)
        if got:
            return got, str(out / str(n))
    return {}, None


# ------------------------------------------------------------------ who runs --


@dataclass(frozen=True)
class Plan:
    """The suites of each guest (in run order) and the expectations they were made from."""

    guests: tuple[tuple[Suite, ...], ...]
    expected_s: dict[str, float] = field(default_factory=dict)
    #: suite -> where its expected duration came from: a run directory or "table"
    source: dict[str, str] = field(default_factory=dict)

    def guest_of(self) -> dict[str, str]:
        """suite name -> ``guest-K`` (1-based)."""
        return {s.name: f"guest-{i}" for i, share in enumerate(self.guests, 1) for s in share}

    def facts(self) -> dict[str, Any]:
        """What ``metadata.json`` records (group ``schedule``)."""
        return {"parallel": len(self.guests),
                "guests": {f"guest-{i}": [s.name for s in share]
                           for i, share in enumerate(self.guests, 1)},
                "expected_s": {k: round(v, 1) for k, v in self.expected_s.items()},
                "expected_from": dict(self.source),
                "expected_load_s": [round(sum(self.expected_s[s.name] for s in share), 1)
                                    for share in self.guests]}


def lpt(suites: Sequence[Suite], expected: dict[str, float], n: int) -> list[list[Suite]]:
    """``suites`` over ``n`` guests, longest first to the least loaded (ties: the earlier
    suite of the selection, the lower guest); each guest's share in selection order."""
    n = max(1, min(n, len(suites)))
    order = sorted(range(len(suites)), key=lambda i: (-expected[suites[i].name], i))
    load = [0.0] * n
    mine: list[list[int]] = [[] for _ in range(n)]
    for i in order:
        g = min(range(n), key=lambda k: (load[k], k))
        load[g] += expected[suites[i].name]
        mine[g].append(i)
    return [[suites[i] for i in sorted(idx)] for idx in mine]


def plan(suites: Sequence[Suite], n: int, recorded: dict[str, float] | None = None,
         recorded_from: str | None = None) -> Plan:
    """Who runs what: :func:`lpt` with the recorded durations, else the table's."""
    recorded = recorded or {}
    expected = {s.name: recorded.get(s.name, float(s.expected_s)) for s in suites}
    source = {s.name: (recorded_from or "") if s.name in recorded else "table" for s in suites}
    shares = lpt(list(suites), expected, n)
    return Plan(tuple(tuple(share) for share in shares), expected, source)
