"""One bench run's shared state: its settings, its run directory, how it starts child
runs, and the step records and errors it collects (harness.modes.bench.runner runs
the steps in order)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.errors import UserError
from harness.model import Options
from harness.modes.bench.records import HotpathRun, StepError
from harness.modes.child import ChildRun

log = logging.getLogger(__name__)

STEPS = ("warm", "edit", "hotpath")

class KernelBench(Protocol):
    """(label, bzImage, program, workdir) -> (boot facts, program runs): how one boot of
    a kernel measures the hot path (harness.modes.bench.hotpath.default_kernel_bench;
    injectable). ``timing_only``: an extra boot for the wall-clock ratios: the hot-path
    cases only, no instruction-counting plugin slowing the guest."""

    def __call__(self, label: str, bzimage: Path, program: Path, workdir: Path, *,
                 timing_only: bool = False) -> tuple[dict[str, Any], list[HotpathRun]]: ...


class BenchRunner(Protocol):
    """How bench starts a child run (harness.modes.child.run_child; tests inject a fake):
    ``env`` is what the child's environment adds (e.g. ``CCACHE_RECACHE``)."""

    def __call__(self, label: str, args: list[str], out: Path, log_path: Path, *,
                 env: Mapping[str, str] | None = None) -> ChildRun: ...


@dataclass
class BenchConfig:
    steps: tuple[str, ...] = STEPS
    cold: bool = False
    with_base: bool = False
    base_kernel: Path | None = None
    reps: int = 7
    rounds: int = 2
    verbose: bool = False
    insn_windows: int = 3
    #: boots of each kernel, interleaved (patched, base, patched, base, ...): the first
    #: counts instructions, the others time the hot path for the wall-clock ratios
    boots: int = 1

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "BenchConfig":
        steps = tuple(s.strip() for s in str(getattr(args, "steps", "") or "").split(",")
                      if s.strip() and s.strip() != "none")
        cold = bool(getattr(args, "cold", False)) or "cold" in steps
        steps = tuple(s for s in steps if s != "cold")
        bad = [s for s in steps if s not in STEPS]
        if bad:
            raise UserError(f"--steps: unknown step(s) {', '.join(bad)} "
                            f"(valid: {', '.join(STEPS)})")
        reps, rounds = int(getattr(args, "reps", 7)), int(getattr(args, "rounds", 2))
        insn_windows = int(getattr(args, "insn_windows", 3) or 0)
        boots = int(getattr(args, "boots", 1) or 1)
        if not 1 <= reps <= 64 or not 1 <= rounds <= 10 or not 0 <= insn_windows <= 64 \
                or not 1 <= boots <= 10:
            raise UserError("--reps must be 1..64, --rounds 1..10, --insn-windows 0..64, "
                            "--boots 1..10")
        base_kernel = getattr(args, "base_kernel", None)
        if base_kernel is not None and not Path(base_kernel).is_file():
            raise UserError(f"--base-kernel {base_kernel}: no such file")
        return cls(steps=steps, cold=cold,
                   with_base=bool(getattr(args, "with_base", False)),
                   base_kernel=Path(base_kernel).resolve() if base_kernel else None,
                   reps=reps, rounds=rounds, verbose=bool(getattr(args, "verbose", False)),
                   insn_windows=insn_windows, boots=boots)



@dataclass
class Session:
    """A bench run in progress: the steps add their records to ``steps``."""

    opts: Options
    args: argparse.Namespace
    cfg: BenchConfig
    run_dir: Path
    runner: BenchRunner
    kernel_bench: KernelBench
    steps: dict[str, Any] = field(default_factory=dict)
    errors: list[StepError] = field(default_factory=list)

    def child(self, label: str, argv: list[str], env: Mapping[str, str] | None = None) -> ChildRun:
        """A child run under ``runs/<label>``; ``env``: settings for its environment only."""
        return self.runner(label, argv, self.run_dir / "runs" / label,
                           self.run_dir / "runs" / f"{label}.log", env=env)

    def error(self, step: str, message: str) -> None:
        log.error("bench: %s: %s", step, message)
        self.errors.append(StepError(step, message))
