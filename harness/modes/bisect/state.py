"""What a bisection keeps in its run directory: ``bisect-state.json`` (what to resume),
``steps.jsonl`` (one JSON per evaluated commit), ``bisect.log`` (``git bisect log``),
and the :class:`Outcome` it ends with."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import gitutil
from harness.errors import UserError
from harness.modes.predicate import DEFAULT_PREDICATE
from harness.paths import atomic_write

STATE_FILE = "bisect-state.json"
STEPS_FILE = "steps.jsonl"
LOG_FILE = "bisect.log"


@dataclass
class BisectState:
    tree: str
    good: str
    bad: str
    good_ref: str
    bad_ref: str
    repo: str  # the shadow repository
    worktree: str
    predicate: str = DEFAULT_PREDICATE
    params: dict[str, Any] = field(default_factory=dict)
    retries: int = 0
    boot_failure: str = "skip"
    status: str = "new"  # new | verifying | bisecting | found | ambiguous | not-verified |
    #                      aborted | interrupted
    first_bad: str | None = None
    candidates: list[str] = field(default_factory=list)
    detail: str = ""

    @classmethod
    def load(cls, run_dir: Path) -> "BisectState":
        p = run_dir / STATE_FILE
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (OSError, ValueError, TypeError) as e:
            raise UserError(f"--resume {run_dir}: cannot read {p}: {e}") from e

    def save(self, run_dir: Path) -> None:
        atomic_write(run_dir / STATE_FILE, json.dumps(dataclasses.asdict(self), indent=2) + "\n")


def read_steps(run_dir: Path) -> list[dict[str, Any]]:
    p = run_dir / STEPS_FILE
    if not p.is_file():
        return []
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a crash
    return out


def append_step(run_dir: Path, record: dict[str, Any]) -> None:
    with open(run_dir / STEPS_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def save_log(worktree: Path, run_dir: Path) -> None:
    res = gitutil.git(worktree, ["bisect", "log"], check=False)
    if res.returncode == 0 and res.output.strip():
        atomic_write(run_dir / LOG_FILE, res.output)


@dataclass
class Outcome:
    status: str
    exit_code: int
    detail: str
    first_bad: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    duration_s: float = 0.0
