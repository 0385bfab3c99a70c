"""The contrast report's data: run directories -> kernels x scenarios.

A *kernel* here is one column of the report: a run directory's kernel at one
value of ``vm.recharge_offline_memcgs`` (the patched 6.12 gives two columns, 0
and 1, from one run; a kernel without the sysctl gives one).  It is read back
from the run's ``metadata.json`` (source release, base tag, patches) and the
``# observe`` lines of its ``ktap/*.tap`` files (harness.parse.observe), which
carry the sysctl value each line was printed at (``-1``: missing).

A *row* is one (case, phase) with a measurement: the case's main line or a
check_owner phase, the stress case's churn and sweep.  The runner's ``phase=run``
line (checks, leak, case time) is attached to every row of its case.
Cases that print only the runner's line (limits, kernel, root cases) get one row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import record
from harness.parse.observe import Observation, read_ktap_dir

#: contrast.json layout version.
SCHEMA_VERSION = 1

#: What each kind of kernel does with a removed memcg's pages (for the legend).
BEHAVIOUR = {
    "base": "keeps them charged to the dead memcg (zombies stay)",
    "series-0": "series built in, recharging off: as the base",
    "series-1": "moves them to the memcg that uses them (recharging)",
    "upstream": "reparents them to the parent at offline (zombies go, the parent pays)",
}


@dataclass(frozen=True)
class Kernel:
    """One column: a run's kernel at one sysctl value."""

    key: str  # stable id: "6.12", "6.12+series@0", "6.12+series@1", "7.2"
    label: str  # for humans: "6.12 + series, sysctl 1"
    release: str  # "6.12", "7.2" (major.minor)
    version: str  # "6.12.117"
    patched: bool
    sysctl: int | None  # None: the kernel has no vm.recharge_offline_memcgs
    run_dir: Path
    exit_code: int | None
    kind: str  # base | series-0 | series-1 | upstream | other

    @property
    def behaviour(self) -> str:
        return BEHAVIOUR.get(self.kind, "")

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "release": self.release,
                "version": self.version, "patched": self.patched, "sysctl": self.sysctl,
                "run_dir": str(self.run_dir), "exit_code": self.exit_code, "kind": self.kind,
                "behaviour": self.behaviour}


@dataclass(frozen=True)
class Cell:
    """What one kernel showed for one row: the measurement and the runner's line."""

    obs: Observation | None
    run: Observation | None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.obs is not None:
            out["observation"] = self.obs.as_dict()
        if self.run is not None:
            out["run"] = self.run.as_dict()
        return out


@dataclass
class Row:
    case: str
    phase: str | None
    cells: dict[str, Cell] = field(default_factory=dict)  # kernel key -> cell

    @property
    def label(self) -> str:
        if self.phase is None or self.phase == self.case or self.phase == "run":
            return self.case
        return f"{self.case} ({self.phase.replace('_', ' ')})"

    @property
    def slug(self) -> str:
        text = self.case if self.phase in (None, "run") else f"{self.case}-{self.phase}"
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:60]

    def series_cells(self) -> dict[str, Observation]:
        """Kernel key -> observation with a dying-count series."""
        return {k: c.obs for k, c in self.cells.items() if c.obs is not None and c.obs.dying}

    def split_cells(self) -> dict[str, Observation]:
        """Kernel key -> observation that says where the removed memory is."""
        return {k: c.obs for k, c in self.cells.items() if c.obs is not None and c.obs.has_split}


@dataclass
class Contrast:
    kernels: list[Kernel]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)

    def kernel(self, key: str) -> Kernel:
        return next(k for k in self.kernels if k.key == key)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kernels": [k.as_dict() for k in self.kernels],
            "rows": [{"case": r.case, "phase": r.phase, "label": r.label,
                      "cells": {k: c.as_dict() for k, c in r.cells.items()}}
                     for r in self.rows],
            "notes": list(self.notes),
        }


# ----------------------------------------------------------------- reading --


_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


def _release_and_version(source: dict[str, Any]) -> tuple[str, str]:
    """("7.2", "7.2.13") from the run's source group (``release``, ``base_ref``)."""
    m = _VERSION.search(str(source.get("base_ref") or ""))
    rel = str(source.get("release") or "")
    if m:
        version = ".".join(x for x in m.groups() if x is not None)
        return rel or f"{m.group(1)}.{m.group(2)}", version
    return rel or "?", rel or "?"


def kernel_kind(release: str, patched: bool, sysctl: int | None) -> str:
    if patched:
        return f"series-{sysctl}" if sysctl in (0, 1) else "other"
    if release == "6.12":
        return "base"
    try:
        newer = tuple(int(x) for x in release.split(".")) > (6, 12)
    except ValueError:
        newer = False
    return "upstream" if newer else "other"


def _label(release: str, patched: bool, sysctl: int | None, kind: str) -> str:
    if patched:
        return f"{release} + series, sysctl {sysctl}" if sysctl is not None \
            else f"{release} + series (no sysctl)"
    return f"{release} upstream" if kind == "upstream" else f"{release} base"


_ORDER = {"base": 0, "series-0": 1, "series-1": 2, "upstream": 3, "other": 4}


def read_run(run_dir: Path) -> tuple[list[Kernel], dict[str, list[Observation]]]:
    """The kernel columns of one run directory and each column's observations."""
    rec = record.load(run_dir)
    source = rec.group("source")
    release, version = _release_and_version(source)
    patched = bool(source.get("patches"))
    by_sysctl: dict[int | None, list[Observation]] = {}
    for _suite, obs in read_ktap_dir(run_dir / "ktap").items():
        for o in obs:
            by_sysctl.setdefault(o.sysctl, []).append(o)
    kernels, observations = [], {}
    for sysctl in sorted(by_sysctl, key=lambda s: -1 if s is None else s):
        kind = kernel_kind(release, patched, sysctl)
        key = release + ("+series" if patched else "") + \
            (f"@{sysctl}" if sysctl is not None else "")
        k = Kernel(key, _label(release, patched, sysctl, kind), release, version, patched,
                   sysctl, run_dir, rec.exit_code, kind)
        kernels.append(k)
        observations[key] = by_sysctl[sysctl]
    return kernels, observations


def build(run_dirs: list[Path]) -> Contrast:
    """The contrast of the given run directories (order: base, series 0/1, upstream)."""
    notes: list[str] = []
    kernels: dict[str, Kernel] = {}
    obs_by_kernel: dict[str, list[Observation]] = {}
    for d in run_dirs:
        ks, obs = read_run(d)
        if not ks:
            rec = record.load(d)
            why = rec.failed_stage()
            notes.append(f"{d}: no '# observe' lines in ktap/ (exit {rec.exit_code}"
                         + (f"; {why[0]}: {why[1][:160]}" if why else "") + ")")
        for k in ks:
            if k.key in kernels:
                notes.append(f"{k.label}: {d} replaces {kernels[k.key].run_dir}")
            kernels[k.key] = k
            obs_by_kernel[k.key] = obs[k.key]
    order = sorted(kernels.values(), key=lambda k: (_ORDER.get(k.kind, 9), k.release, k.key))
    rows: dict[tuple[str, str | None], Row] = {}
    run_lines: dict[tuple[str, str], Observation] = {}
    for k in order:
        for o in obs_by_kernel[k.key]:
            if o.is_run:
                run_lines[(k.key, o.case)] = o
                continue
            row = rows.setdefault(o.key, Row(o.case, o.phase))
            row.cells[k.key] = Cell(o, None)
    # Cases with nothing but the runner's line get a row of their own.
    for (kkey, case), _run in run_lines.items():
        if not any(r.case == case for r in rows.values()):
            rows.setdefault((case, "run"), Row(case, "run"))
        for r in rows.values():
            if r.case == case:
                prev = r.cells.get(kkey)
                r.cells[kkey] = Cell(prev.obs if prev else None, run_lines[(kkey, case)])
    ordered = _program_order(list(rows.values()), order, obs_by_kernel)
    return Contrast(order, ordered, notes)


def _program_order(rows: list[Row], kernels: list[Kernel],
                   obs: dict[str, list[Observation]]) -> list[Row]:
    """Rows in the order the programs print them (first kernel that has each first)."""
    rank: dict[str, int] = {}
    for k in kernels:
        for o in obs[k.key]:
            rank.setdefault(o.case, len(rank))
    return sorted(rows, key=lambda r: (rank.get(r.case, len(rank)), r.phase == "run"))


# ------------------------------------------------------------------ values --


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    sign, a = ("-" if n < 0 else ""), abs(n)
    if a >= 1 << 20:
        return f"{sign}{a / (1 << 20):.1f} MiB"
    if a >= 1 << 10:
        return f"{sign}{a / (1 << 10):.0f} KiB"
    return f"{sign}{a} B"


def human_ms(ms: int | None) -> str:
    if ms is None:
        return "-"
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms} ms"


def oom_kills(cell: Cell) -> int | None:
    """OOM kills during the case: the most of the case parent's hierarchical count
    (``oom_kill``) and the system's (``oom_kill_sys``), over its lines; None: not measured."""
    vals = [v for o in (cell.obs, cell.run) if o is not None
            for v in (o.oom_kill, o.oom_kill_sys) if v is not None]
    return max(vals) if vals else None


def columns(cell: Cell) -> dict[str, str]:
    """The table's text for one cell (the same words in HTML, Markdown and text)."""
    o, r = cell.obs, cell.run
    out = {"dying": "-", "cleared": "-", "removed": "-", "user": "-", "parent": "-",
           "dead": "-", "oom": "-", "time": "-", "checks": "-"}
    if o is not None:
        if o.dying_end is not None:
            if o.dying_start is not None:
                text = f"{o.dying_start} → {o.dying_end}"
            elif o.dying_max is not None:
                text = f"max {o.dying_max}, end {o.dying_end}"
            else:
                text = str(o.dying_end)
            out["dying"] = text + (f" after {human_ms(o.window_ms)}" if o.window_ms is not None
                                   else "")
        if o.t_nodying_ms is not None:
            out["cleared"] = human_ms(o.t_nodying_ms)
        elif o.printed("t_nodying_ms"):
            out["cleared"] = "never"
        if o.removed is not None:
            out["removed"] = human_bytes(o.removed)
        if o.has_split:
            out["user"] = human_bytes(o.user)
            bound = o.split == "bound" and bool(o.dead)  # dead memcgs or the parent: a bound
            out["parent"] = ("≥ " if bound else "") + human_bytes(o.parent)
            out["dead"] = ("≤ " if bound else "") + human_bytes(o.dead)
    kills = oom_kills(cell)
    out["oom"] = "-" if kills is None else str(kills)
    if r is not None:
        out["time"] = human_ms(r.case_ms)
        out["checks"] = (r.checks or "-") + (", leak" if r.leak else "") + \
            (f", kmsg {r.kmsg}" if r.kmsg else "")
    elif o is not None and o.window_ms is not None:
        out["time"] = human_ms(o.window_ms)
    return out


COLUMN_TITLES = {
    "dying": "dying memcgs (start → end, after)",
    "cleared": "back to baseline after",
    "removed": "bytes removed",
    "user": "bytes at user",
    "parent": "bytes at parent",
    "dead": "bytes at dead memcgs",
    "oom": "OOM kills",
    "time": "case time",
    "checks": "own checks",
}


#: The headline rows: README's "Series versus upstream" table, in its layout.
HEADLINE = (("zombie_shmem", None), ("zombie_file", None), ("stress", "sweep"))


def to_markdown_wide(c: Contrast) -> str:
    """The headline rows with one column per kernel, as README's table lays them out."""
    head = ["scenario", "measure", *(k.label for k in c.kernels)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case, phase in HEADLINE:
        row = next((r for r in c.rows if r.case == case and r.phase == phase), None)
        if row is None:
            continue
        cols = {k.key: columns(row.cells[k.key]) if k.key in row.cells else None
                for k in c.kernels}

        def cell(k: Kernel, fmt: str, cols: dict[str, dict[str, str] | None] = cols) -> str:
            col = cols[k.key]
            return "-" if col is None else fmt.format(**col)

        for i, (measure, fmt) in enumerate((
                ("dying memcgs (back to baseline after)", "{dying} ({cleared})"),
                ("bytes at user / parent / dead", "{user} / {parent} / {dead}"),
                ("OOM kills", "{oom}"))):
            label = f"`{case}`" + (f" ({phase})" if phase else "") if i == 0 else ""
            lines.append("| " + " | ".join([label, measure, *(cell(k, fmt) for k in c.kernels)])
                         + " |")
    return "\n".join(lines) + "\n"


def to_markdown(c: Contrast) -> str:
    """contrast.md: the headline table (README's layout), then every scenario."""
    return ("## Headline\n\n" + to_markdown_wide(c) + "\n## Every scenario\n\n"
            + to_markdown_long(c))


def to_markdown_long(c: Contrast) -> str:
    """Every row and kernel, one line each."""
    head = ["scenario", "kernel", *COLUMN_TITLES.values()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in c.rows:
        for k in c.kernels:
            cell = row.cells.get(k.key)
            if cell is None:
                continue
            cols = columns(cell)
            lines.append("| " + " | ".join([row.label, k.label, *(cols[x] for x in COLUMN_TITLES)])
                         + " |")
    return "\n".join(lines) + "\n"


def to_text(c: Contrast) -> str:
    """summary.txt: kernels, then one line per scenario and kernel."""
    out = ["contrast: " + ", ".join(f"{k.label} ({k.version})" for k in c.kernels), ""]
    for k in c.kernels:
        out.append(f"  {k.label:<26} {k.behaviour} [{k.run_dir}]")
    out.append("")
    fmt = "{:<34} {:<26} {:<24} {:>8} {:>11} {:>11} {:>12} {:>13} {:>4} {:>8}"
    out.append(fmt.format("scenario", "kernel", "dying", "cleared", "removed", "user", "parent",
                          "dead", "oom", "time"))
    for row in c.rows:
        for k in c.kernels:
            cell = row.cells.get(k.key)
            if cell is None:
                continue
            cols = columns(cell)
            out.append(fmt.format(row.label[:34], k.label, cols["dying"], cols["cleared"],
                                  cols["removed"], cols["user"], cols["parent"], cols["dead"],
                                  cols["oom"], cols["time"]))
    out += [f"note: {n}" for n in c.notes]
    return "\n".join(out).rstrip() + "\n"
