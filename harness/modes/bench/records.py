"""Typed records of a bench run: what each step measured, written as ``bench.json``.

Every record turns into the JSON of ``bench.json`` with :func:`jsonable` (field names
are the JSON keys; fields listed in ``OPTIONAL`` are left out while they are None).
The report (:mod:`harness.modes.bench.report`) reads that JSON document back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar


def jsonable(value: Any) -> Any:
    """Records, dicts, lists and paths as plain JSON values."""
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


class Record:
    """Base of the bench records: a dataclass whose fields are the JSON keys."""

    OPTIONAL: ClassVar[frozenset[str]] = frozenset()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if v is None and f.name in self.OPTIONAL:
                continue
            out[f.name] = jsonable(v)
        return out


@dataclass
class StageTime(Record):
    status: str | None
    duration_s: float | None
    detail: str = ""


@dataclass
class ChildSummary(Record):
    """What a child run took: wall time, per-stage split, lock waits, boot, suites."""

    OPTIONAL = frozenset({"failed_stage", "boot", "build_phases"})

    label: str
    exit_code: int
    run_dir: str | None
    wall_s: float
    stages: dict[str, StageTime]
    stage_sum_s: float
    outside_stages_s: float
    lock_waits_s: dict[str, float]
    build_info: dict[str, Any]
    suites: dict[str, dict[str, Any]]
    suites_total_s: float
    failed_stage: dict[str, str] | None = None
    boot: dict[str, Any] | None = None
    #: what the build stage recompiled and when each phase ended (timing.build_phases)
    build_phases: dict[str, Any] | None = None


@dataclass
class MakeTiming(Record):
    """One ``make`` with a timestamp on every line."""

    OPTIONAL = frozenset({"lock_wait_s"})

    argv: list[str]
    exit_code: int
    duration_s: float
    cc_count: int
    cpu_user_s: float
    cpu_sys_s: float
    first_seen_s: dict[str, float]
    tail: list[str]
    lock_wait_s: float | None = None


@dataclass
class HotpathOutput(Record):
    """The hotpath program's KTAP: case statuses, ``# bench`` metrics, kernel/sysctl info."""

    cases: dict[str, dict[str, str]] = field(default_factory=dict)
    metrics: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)


@dataclass
class HotpathRun(Record):
    """One run of the hotpath program in the guest (one kernel, sysctl value, round)."""

    OPTIONAL = frozenset({"insn"})

    label: str
    round: int
    sysctl: int | None
    exit_code: int | None
    duration_s: float
    timed_out: bool
    tap: str
    cases: dict[str, dict[str, str]]
    metrics: dict[str, dict[str, dict[str, Any]]]
    info: dict[str, str]
    #: instruction windows of this run (harness.stages.insncount.Session.windows)
    insn: dict[str, Any] | None = None

    def failures(self) -> int:
        return sum(1 for c in self.cases.values() if c["status"] == "fail")


@dataclass
class KernelHotpath(Record):
    OPTIONAL = frozenset({"timing_boots", "timing_merged"})

    boot: dict[str, Any]
    runs: list[HotpathRun]
    merged: dict[str, Any]
    #: the extra, plugin-free boots (``--boots``): their facts and pooled samples
    timing_boots: list[dict[str, Any]] | None = None
    timing_merged: dict[str, Any] | None = None


@dataclass
class HotpathStep(Record):
    OPTIONAL = frozenset({"patched_kernel", "program", "config_difference", "base_note",
                          "functional_failures", "ratios", "insn_ratios", "wall_note"})

    patched_kernel: str | None = None
    program: str | None = None
    base_kernel: str | None = None
    config_difference: list[str] | None = None
    base_note: str | None = None
    kernels: dict[str, KernelHotpath] = field(default_factory=dict)
    functional_failures: int | None = None
    ratios: list[dict[str, Any]] | None = None
    insn_ratios: list[dict[str, Any]] | None = None
    wall_note: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.patched_kernel is None:  # nothing to benchmark: an empty step
            return {}
        out = super().to_json()
        kernels = out.pop("kernels")
        ff = out.pop("functional_failures", None)
        rest: dict[str, Any] = {k: out.pop(k) for k in ("ratios", "insn_ratios") if k in out}
        out.update(kernels)
        if ff is not None:
            out["functional_failures"] = ff
        out.update(rest)
        return out


@dataclass
class EditStep(Record):
    """The one-line edit: its series, the run to a verdict, the build putting things back."""

    OPTIONAL = frozenset({"branch_created", "run", "verdict_s", "revert_build", "make_noop"})

    series: str
    line: str
    branch_created: bool | None = None
    run: ChildSummary | None = None
    verdict_s: float | None = None
    revert_build: ChildSummary | None = None
    make_noop: MakeTiming | dict[str, str] | None = None


@dataclass
class ColdBuild(Record):
    """One cold build (no ccache, a fresh ``O=`` directory) of a profile."""

    OPTIONAL = frozenset({"error", "bzimage_bytes"})

    profile: str
    base_config: str
    tree_commit: str
    fragments: list[str]
    kbuild: str
    config_log: str
    build_log: str
    config_s: float = 0.0
    config_problems: list[str] = field(default_factory=list)
    options_y: int = 0
    options_m: int = 0
    lock_wait_s: float = 0.0
    loadavg_before: list[float] = field(default_factory=list)
    loadavg_after: list[float] = field(default_factory=list)
    build_s: float = 0.0
    cc_count: int = 0
    cpu_user_s: float = 0.0
    cpu_sys_s: float = 0.0
    exit_code: int = 0
    first_seen_s: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    bzimage_bytes: int | None = None
    cc_by_dir: dict[str, int] = field(default_factory=dict)


@dataclass
class ColdStep(Record):
    OPTIONAL = frozenset({"checkout_s", "tree", "ratio", "cpu_ratio"})

    checkout_s: float | None = None
    tree: str | None = None
    builds: dict[str, ColdBuild] = field(default_factory=dict)
    ratio: float | None = None
    cpu_ratio: float | None = None

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        builds = out.pop("builds")
        tail: dict[str, Any] = {k: out.pop(k) for k in ("ratio", "cpu_ratio") if k in out}
        return {**out, **builds, **tail}


@dataclass
class StepError(Record):
    step: str
    error: str
