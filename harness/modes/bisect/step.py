"""One step of the bisection: the predicate on one commit (with retries), recorded, and
the answer ``git bisect run`` gets (:func:`step_main` is the command it runs)."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from harness import gitutil, proc
from harness.modes.bisect.state import BisectState, append_step, read_steps, save_log
from harness.modes.predicate import Observation, Predicate, StepContext, Verdict, load_predicate

log = logging.getLogger(__name__)


#: What git exports to the command of ``git bisect run`` that names a repository.
GIT_REPO_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_INDEX_FILE", "GIT_PREFIX",
                "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES")

#: What ``git bisect run`` is told, by exit code.
ACTION_EXIT = {"good": 0, "bad": 1, "skip": 125, "abort": 255}


def action_for(verdict: Verdict, boot_failure: str) -> str:
    if verdict is Verdict.GOOD:
        return "good"
    if verdict is Verdict.BAD:
        return "bad"
    if verdict in (Verdict.BUILD, Verdict.UNTESTABLE):
        return "skip"
    if verdict is Verdict.BOOT:
        return boot_failure
    return "abort"


def combine(attempts: list[Observation]) -> tuple[Verdict, bool]:
    """The step's verdict from its attempts, and whether they disagreed (flaky)."""
    kinds = [a.verdict for a in attempts]
    flaky = len(set(kinds)) > 1
    for v in (Verdict.GOOD, Verdict.BUILD, Verdict.UNTESTABLE, Verdict.BAD, Verdict.BOOT):
        if v in kinds:
            return v, flaky
    return Verdict.INFRA, flaky


def evaluate(state: BisectState, run_dir: Path, commit: str, role: str,
             predicate: Predicate | None = None) -> dict[str, Any]:
    """Run the predicate on ``commit`` (with retries), record and return the step.

    A commit already evaluated in this run directory (an interrupted bisect being
    resumed) is not run again: its recorded verdict is reused (not a "no verdict").
    """
    for old in read_steps(run_dir):
        if old.get("commit") == commit and old.get("verdict") not in (None, Verdict.INFRA.value):
            rec = dict(old, role=role, cached=True,
                       action=action_for(Verdict(old["verdict"]), state.boot_failure))
            append_step(run_dir, rec)
            log.info("bisect: %s already evaluated: %s (cached)", commit[:12], old["verdict"])
            return rec
    pred = predicate or load_predicate(state.predicate)
    repo = Path(state.repo)
    subject = gitutil.out(repo, ["log", "-1", "--format=%s", commit])
    attempts: list[dict[str, Any]] = []
    observed: list[Observation] = []
    start = time.monotonic()
    log.info("bisect: %s %s %s", role, commit[:12], subject)
    for n in range(1, state.retries + 2):
        adir = run_dir / "steps" / f"{commit[:12]}-{n}"
        adir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        try:
            obs = pred(StepContext(commit, subject, Path(state.tree), repo, adir, n,
                                   state.params))
        except (KeyboardInterrupt, SystemExit):
            append_step(run_dir, {"commit": commit, "subject": subject, "role": role,
                                   "interrupted": True, "attempts": attempts})
            raise
        except Exception as e:  # a crashing predicate is "no verdict", not a bisect crash
            log.debug("predicate failed", exc_info=True)
            obs = Observation(Verdict.INFRA, f"predicate raised {type(e).__name__}: {e}")
        observed.append(obs)
        attempts.append({"attempt": n, "verdict": obs.verdict.value, "detail": obs.detail,
                         "evidence": dict(obs.evidence),
                         "duration_s": round(time.monotonic() - t0, 1)})
        log.info("bisect: %s attempt %d: %s: %s", commit[:12], n, obs.verdict.value, obs.detail)
        if obs.verdict in (Verdict.GOOD, Verdict.BUILD, Verdict.UNTESTABLE):
            break
    verdict, flaky = combine(observed)
    rec = {"commit": commit, "subject": subject, "role": role, "verdict": verdict.value,
           "action": action_for(verdict, state.boot_failure), "flaky": flaky,
           "attempts": attempts, "duration_s": round(time.monotonic() - start, 1),
           "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    append_step(run_dir, rec)
    return rec


def step_main(argv: list[str]) -> int:
    """``python -m harness.modes.bisect step <run_dir>``: what ``git bisect run`` calls."""
    import signal

    logging.basicConfig(level=logging.INFO, format="%(levelname).1s: %(message)s",
                        stream=sys.stderr)

    def terminated(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # stop the child run's session, then exit

    signal.signal(signal.SIGTERM, terminated)
    if len(argv) != 2 or argv[0] != "step":
        print("usage: python -m harness.modes.bisect step RUN_DIR", file=sys.stderr)
        return ACTION_EXIT["abort"]
    run_dir = Path(argv[1])
    # `git -C <worktree> bisect run` exports GIT_DIR (and GIT_PREFIX) to the command: a
    # child run's git commands on the user's tree would then act on the bisect worktree's
    # repository instead (it pointed the shadow repository's alternates at itself).
    for var in GIT_REPO_ENV:
        os.environ.pop(var, None)
    try:
        state = BisectState.load(run_dir)
        wt = Path(state.worktree)
        save_log(wt, run_dir)
        commit = gitutil.out(wt, ["rev-parse", "BISECT_HEAD"])
        rec = evaluate(state, run_dir, commit, "step")
        return ACTION_EXIT[rec["action"]]
    except KeyboardInterrupt:
        return ACTION_EXIT["abort"]
    except Exception as e:
        log.error("bisect step failed: %s", e)
        return ACTION_EXIT["abort"]
    finally:
        proc.kill_all()
