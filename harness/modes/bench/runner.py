"""The steps of a bench run, in order: apply, base kernel, edit series, prime, warm,
edit, hot path, cold builds (harness.modes.bench's docstring says what each measures).

Every child run is an ordinary harness run (:mod:`harness.modes.child`) with its own
run directory under ``<out>/<N>/runs/``; its options are the ones the user gave
(:func:`harness.options.forward_args`), plus explicit arguments per step.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.modes import child as rundir
from harness.modes.bench.basekernel import find_base_kernel
from harness.modes.bench.cold import run_cold
from harness.modes.bench.edit import prepare_edit, run_edit
from harness.modes.bench.hotpath import run_hotpath_step
from harness.modes.bench.records import jsonable
from harness.modes.bench.session import Session
from harness.modes.bench.timing import summarize_child
from harness.modes.child import ChildRun
from harness.parse import buildlog
from harness.stages.config import fragments_for

log = logging.getLogger(__name__)

SCHEMA = 1


def host_facts() -> dict[str, Any]:
    u = os.uname()
    return {"nodename": u.nodename, "kernel": u.release, "cpus": os.cpu_count(),
            "loadavg": list(os.getloadavg()), "python": sys.version.split()[0]}


def header(s: Session) -> dict[str, Any]:
    """The start of ``bench.json``: what was asked, where, on which host."""
    o = s.opts
    return {"schema": SCHEMA, "run_dir": str(s.run_dir),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": host_facts(),
            "options": {"steps": list(s.cfg.steps), "cold": s.cfg.cold, "reps": s.cfg.reps,
                        "rounds": s.cfg.rounds, "profile": o.profile,
                        "jobs": o.jobs or os.cpu_count(), "argv": list(o.argv)}}


def to_json(s: Session, head: dict[str, Any]) -> dict[str, Any]:
    """``bench.json`` so far (the report adds goals and the end time)."""
    data = {**head, "steps": jsonable(s.steps)}
    if s.errors:
        data["errors"] = jsonable(s.errors)
    return data


def run(s: Session) -> None:
    """Every selected step; a step that cannot go on records an error and ends the run."""
    common = rundir.forward_args(s.args, drop=("out",))
    common_no_suite = rundir.forward_args(s.args, drop=("out", "suite"), command="build")
    no_series = rundir.forward_args(s.args, drop=("out", "suite", "series"))
    # Where the tree is: an `apply` child (cheap when the series is unchanged).
    ap = s.child("apply", ["apply", *rundir.forward_args(s.args, drop=("out",),
                                                          command="apply")])
    src = ap.record().group("source")
    if ap.exit_code != 0 or not src.get("head_commit"):
        s.error("apply", f"the series did not apply: {rundir.describe(ap)}")
        return
    s.steps["apply"] = summarize_child(ap)
    base_kernel = _base_kernel(s, src, no_series)
    edit_series = prepare_edit(s, src) if "edit" in s.cfg.steps else None
    ok, prime = _prime(s, common_no_suite)
    if not ok:
        return
    warm_run: ChildRun | None = None
    if "warm" in s.cfg.steps:
        warm_run = s.child("warm", ["run", *common])
        s.steps["warm"] = warm = summarize_child(warm_run)
        if warm_run.run_dir is None or warm.boot is None:
            s.error("warm", f"no boot/suite timings: {rundir.describe(warm_run)}")
    if edit_series is not None:
        run_edit(s, edit_series, no_series, common_no_suite)
    if "hotpath" in s.cfg.steps:
        run_hotpath_step(s, warm_run or prime, base_kernel)
    if s.cfg.cold:
        run_cold(s, src)


def _fragments(s: Session, src: dict[str, Any]) -> list[Path] | None:
    try:
        return fragments_for(s.opts.project, Path(src.get("worktree", "/nonexistent")),
                             s.opts.profile)
    except HarnessError:
        return None


def _base_kernel(s: Session, src: dict[str, Any], no_series: list[str]) -> Path | None:
    """The unpatched kernel for the hot-path ratios: given, found, or built (--with-base)."""
    base_kernel = s.cfg.base_kernel
    if "hotpath" not in s.cfg.steps or base_kernel is not None:
        return base_kernel
    found = find_base_kernel([s.opts.out, s.run_dir], src["base_commit"], s.opts.profile,
                             _fragments(s, src))
    if found is not None and (found[1] or not s.cfg.with_base):
        base_kernel = found[0]
        s.steps["base_found"] = {"bzimage": str(found[0]), "same_fragments": found[1]}
    if base_kernel is None and s.cfg.with_base:
        empty = s.run_dir / "base.series"
        empty.write_text("# empty: the unpatched base (recharge-harness bench)\n")
        bb = s.child("base-build", ["build", "--series", str(empty),
                                    *rundir.forward_args(s.args, drop=("out", "series"),
                                                         command="build")])
        s.steps["base_build"] = summarize_child(bb)
        if bb.exit_code == 0 and bb.file("kernel/bzImage"):
            base_kernel = bb.file("kernel/bzImage")
        else:
            s.error("hotpath", f"base kernel build failed: {rundir.describe(bb)}")
    return base_kernel


def _prime(s: Session, common_no_suite: list[str]) -> tuple[bool, ChildRun | None]:
    """(went well, the priming ``build``: None when no step needs one)."""
    if not {"warm", "edit", "hotpath"} & set(s.cfg.steps):
        return True, None
    prime = s.child("prime", ["build", *common_no_suite])
    s.steps["prime"] = summary = summarize_child(prime)
    if prime.exit_code != 0:
        s.error("prime", f"build failed: {rundir.describe(prime)}")
        return False, prime
    if "edit" in s.cfg.steps and summary.build_info.get("skipped"):
        # The build was skipped as up to date by its stamp (commit + .config), but
        # files may be newer than their objects (same content, new mtimes: e.g.
        # when the edit branch was created, every file the series touches was
        # rewritten; other runs switching the shared worktree do the same).  Make
        # must absorb that now, or the edit's build would, and look slow.
        kbuild = Path(str(prime.record().group("config").get("kbuild", "")))
        gone = buildlog.forget_objects(kbuild, ["mm/memcontrol.c"]) if kbuild.name else []
        log.info("bench: a real make before the edit (%d file(s) forgotten)", len(gone))
        prime = s.child("prime-2", ["build", *common_no_suite])
        s.steps["prime_2"] = summarize_child(prime)
        if prime.exit_code != 0:
            s.error("prime", f"build failed: {rundir.describe(prime)}")
            return False, prime
    return True, prime
