"""The end of a ``run``: stages never reached, the report stage, the verdict.

What :class:`harness.modes.run.Pipeline` records about a stage's result (the facts
of the source, the applied series, the config) and how it ends: every stage it did
not reach is NOTRUN, the kernel log is scanned (:mod:`harness.report.kernellog`),
``junit.xml`` and ``summary.txt`` are written, and :func:`harness.verdict.exit_code`
decides the exit code that the run record ends with.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, Any

from harness import verdict
from harness.errors import EXIT_FAIL, EXIT_NO_VERDICT, EXIT_PASS, HarnessError
from harness.model import StageResult, Status
from harness.report import kernellog
from harness.report.junit import write_junit
from harness.report.summary import render_summary
from harness.stages import apply as seriesmod
from harness.stages import source as sourcemod
from harness.stages.config import ConfigResult, vng_version

if TYPE_CHECKING:  # pragma: no cover - the pipeline calls this module
    from harness.modes.run import Pipeline

log = logging.getLogger(__name__)

STAGES = ("source", "apply", "config", "build", "selftests", "boot", "guest-setup", "suites",
          "report")
#: Last stage of each subcommand.
LAST_STAGE = {"source": "source", "apply": "apply", "config": "config", "build": "selftests",
              "boot": "guest-setup", "test": "report", "run": "report"}


def source_facts(src: sourcemod.Source) -> dict[str, Any]:
    return {"kind": src.kind, "repo": str(src.repo),
            "release": src.release if src.kind == "debian" else "", "base_ref": src.base_ref,
            "base_commit": src.base_commit, "user_tree": str(src.user_tree or "")}


def applied_facts(a: seriesmod.AppliedTree, ser: seriesmod.Series) -> dict[str, Any]:
    return {"worktree": str(a.worktree), "branch": a.branch, "head_commit": a.head_commit,
            "series_file": str(ser.series_file or ""), "series_key": a.series_key,
            "patches": [{"index": p.index, "name": p.name, "subject": p.subject,
                         "commit": p.commit} for p in a.patches]}


def config_detail(cfg: ConfigResult) -> str:
    return (f"{cfg.config} ({'reused' if not cfg.regenerated else 'regenerated'}, "
            f"{'changed' if cfg.changed else 'unchanged'}), "
            f"{cfg.requested} requested options verified"
            + (f", {len(cfg.warnings)} warning(s)" if cfg.warnings else ""))


def finish(p: Pipeline, error: HarnessError | None) -> int:
    """Mark stages never reached as NOTRUN, write reports, return the exit code."""
    done = {s.name for s in p.stages}
    for name in STAGES:
        if name not in done and p.wants(name) and name != "report":
            if p.o.command == "test" and name == "selftests":
                continue
            if p.o.kernel_dir is not None and name in ("source", "apply", "config"):
                continue  # another run's kernel: these did not apply (harness.stages.kerneldir)
            p.record(StageResult(name, Status.NOTRUN, 0.0, None,
                                 "not reached" if error else "skipped"))
    if p.wants("suites"):
        p.not_run_suites(error)
    if p.wants("report"):
        report(p)
    code = verdict.exit_code(p.stages, p.ctx.runs if p.wants("suites") else [],
                             p.findings, suites_expected=p.wants("suites"))
    if error is not None and code == EXIT_PASS:
        # Stopped between stages (an interrupt while waiting for a lock, say): what
        # ran passed, but the job is not done.
        code = EXIT_NO_VERDICT
    word = {EXIT_PASS: "pass", EXIT_FAIL: "fail"}.get(code, "no verdict")
    if error is not None:
        p.meta.set("results", "error", error.describe())
    p.meta.finish(code, word)
    return code


def report(p: Pipeline) -> None:
    """Stage ``report``: kernel-log findings, ``junit.xml``, ``summary.txt`` (printed)."""
    c = p.ctx
    start = time.monotonic()
    detail = []
    status = Status.PASS
    props = {
        "base_commit": c.src.base_commit if c.src else c.kernel_source.get("base_commit", ""),
        "head_commit": (c.applied.head_commit if c.applied
                        else c.kernel_source.get("head_commit", "")),
        "config_sha256": c.config.config_sha256 if c.config else "",
        "accel": c.accel.accel if c.accel else "",
        "accel_reason": c.accel.reason if c.accel else "",
        "virtme_ng": vng_version(),
        "run_dir": str(p.run_dir),
    }
    p.findings, group = kernellog.scan(p.run_dir, p.o.project, c.guests)
    if group:
        p.meta.update("kernel_log", group)
    try:
        write_junit(c.runs, p.path("junit.xml"), props, p.findings)
        detail.append(f"junit: {p.path('junit.xml')}")
    except Exception as e:
        status = Status.ERROR
        detail.append(f"junit writer failed: {type(e).__name__}: {e}")
        log.debug("junit", exc_info=True)
    stages = list(p.stages) + [StageResult("report", status, time.monotonic() - start,
                                           None, "; ".join(detail))]
    text = render_summary(c.runs, stages, p.findings)
    p.path("summary.txt").write_text(text)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
    p.record(stages[-1])
