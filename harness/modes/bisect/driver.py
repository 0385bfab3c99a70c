"""The driver: a private worktree of the shadow repository, the endpoint checks, then
``git bisect run`` with :mod:`harness.modes.bisect.step` as its command."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from harness import gitutil, proc
from harness.errors import EXIT_NO_VERDICT, EXIT_PASS
from harness.modes.bisect.state import LOG_FILE, BisectState, Outcome, read_steps, save_log
from harness.modes.bisect.step import evaluate
from harness.modes.predicate import Predicate, Verdict
from harness.paths import atomic_write

log = logging.getLogger(__name__)

BISECT_RUN_TIMEOUT_S = 14 * 24 * 3600.0


_FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit", re.M)
_ANY_OF = re.compile(r"could be any of:\n((?:[0-9a-f]{40}\n?)+)")


#: the directory that holds the ``harness`` package: the steps that ``git bisect run``
#: starts import it from there, whether or not the harness is installed
IMPORT_ROOT = Path(__file__).resolve().parents[3]

class Bisector:
    """One bisection in ``run_dir`` (new or resumed); :meth:`run` always cleans up."""

    def __init__(self, state: BisectState, run_dir: Path, *,
                 predicate: Predicate | None = None):
        self.state = state
        self.run_dir = run_dir
        self.predicate = predicate  # for the endpoint checks (in-process); steps load the spec
        self.wt = Path(state.worktree)
        self.repo = Path(state.repo)

    def _git(self, *args: str, check: bool = True, timeout: float = 600.0) -> str:
        res = gitutil.git(self.wt, list(args), check=check, timeout=timeout)
        return res.output + res.stderr

    def _add_worktree(self) -> None:
        gitutil.git(self.repo, ["worktree", "prune"], check=False)
        if self.wt.exists():
            gitutil.git(self.repo, ["worktree", "remove", "--force", str(self.wt)], check=False)
        self.wt.parent.mkdir(parents=True, exist_ok=True)
        gitutil.git(self.repo, ["worktree", "add", "--no-checkout", "--detach", str(self.wt),
                                self.state.bad])

    def _remove_worktree(self) -> None:
        if self.wt.exists():
            gitutil.git(self.wt, ["bisect", "reset"], check=False)
            gitutil.git(self.repo, ["worktree", "remove", "--force", str(self.wt)], check=False)
        gitutil.git(self.repo, ["worktree", "prune"], check=False)

    def _verify(self) -> str | None:
        """None when A is good and B bad; else why not."""
        s = self.state
        for commit, ref, role, want in ((s.good, s.good_ref, "verify-good", "good"),
                                        (s.bad, s.bad_ref, "verify-bad", "bad")):
            rec = evaluate(s, self.run_dir, commit, role, self.predicate)
            if want == "good" and rec["verdict"] == Verdict.UNTESTABLE.value:
                # Before the feature existed: good on the user's word, and said so.
                log.info("bisect: --good %s cannot be tested (%s): taken as good", ref,
                         rec["attempts"][-1]["detail"] if rec.get("attempts") else "")
                continue
            if rec["action"] != want:
                return (f"--{want} {ref} ({commit[:12]}) is not {want}: {rec['verdict']}: "
                        f"{rec['attempts'][-1]['detail'] if rec.get('attempts') else ''}")
        return None

    def _step_command(self) -> list[str]:
        return [sys.executable, "-m", "harness.modes.bisect", "step", str(self.run_dir)]

    def run(self) -> Outcome:
        s, start = self.state, time.monotonic()
        outcome = Outcome("aborted", EXIT_NO_VERDICT, "")
        try:
            self._add_worktree()
            s.status = "verifying"
            s.save(self.run_dir)
            why = self._verify()
            if why is not None:
                s.status, s.detail = "not-verified", why
                outcome = Outcome("not-verified", EXIT_NO_VERDICT, why)
                return outcome
            s.status = "bisecting"
            s.save(self.run_dir)
            saved = self.run_dir / LOG_FILE
            if saved.is_file() and saved.read_text().strip():
                log.info("bisect: replaying %s", saved)
                text = self._git("bisect", "replay", str(saved))
            else:
                text = self._git("bisect", "start", "--no-checkout", s.bad, s.good)
            save_log(self.wt, self.run_dir)
            if not _FIRST_BAD.search(text) and "could be any of" not in text:
                text = self._bisect_run()
            save_log(self.wt, self.run_dir)
            outcome = self._conclude(text)
            return outcome
        except KeyboardInterrupt:
            s.status, s.detail = "interrupted", "interrupted: resume with --resume"
            outcome = Outcome("interrupted", EXIT_NO_VERDICT, f"interrupted; resume with "
                              f"`recharge-harness bisect --resume {self.run_dir}`")
            raise
        finally:
            try:
                if self.wt.exists():
                    save_log(self.wt, self.run_dir)
            finally:
                self._remove_worktree()
                outcome.steps = read_steps(self.run_dir)
                outcome.duration_s = time.monotonic() - start
                if s.status in ("bisecting", "verifying"):
                    s.status = outcome.status
                s.save(self.run_dir)
                self._write_json(outcome)

    def _bisect_run(self) -> str:
        env = dict(gitutil.READ_ONLY_ENV)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(IMPORT_ROOT), os.environ.get("PYTHONPATH")) if p)
        argv = ["git", "-C", str(self.wt), "bisect", "run", *self._step_command()]

        def echo(line: str) -> None:
            if line.strip():
                log.info("  %s", line)

        res = proc.run(argv, cwd=self.wt, timeout=BISECT_RUN_TIMEOUT_S, env=env,
                       log_path=self.run_dir / "git-bisect-run.log", on_line=echo)
        return res.output

    def _conclude(self, text: str) -> Outcome:
        s = self.state
        m = _FIRST_BAD.search(text)
        if m:
            s.status, s.first_bad = "found", m.group(1)
            rec = _record_for(read_steps(self.run_dir), m.group(1))
            if rec is None:  # decided without running it (e.g. B itself)
                rec = {"commit": m.group(1), "verdict": "bad", "attempts": []}
            subj = rec.get("subject") or gitutil.out(self.repo, ["log", "-1", "--format=%s",
                                                                m.group(1)])
            s.detail = f"first bad commit {m.group(1)[:12]} {subj}"
            return Outcome("found", EXIT_PASS, s.detail, rec)
        a = _ANY_OF.search(text)
        if a:
            s.status, s.candidates = "ambiguous", a.group(1).split()
            s.detail = (f"only skipped commits left: the first bad commit is one of "
                        f"{', '.join(c[:12] for c in s.candidates)}")
            return Outcome("ambiguous", EXIT_NO_VERDICT, s.detail)
        last = [l for l in text.splitlines() if l.strip()][-1:] or ["no output"]
        s.status, s.detail = "aborted", f"git bisect run stopped: {last[0]}"
        return Outcome("aborted", EXIT_NO_VERDICT, s.detail)

    def _write_json(self, outcome: Outcome) -> None:
        data = {"state": dataclasses.asdict(self.state), "status": outcome.status,
                "exit_code": outcome.exit_code, "detail": outcome.detail,
                "first_bad": outcome.first_bad, "duration_s": round(outcome.duration_s, 1),
                "steps": outcome.steps}
        atomic_write(self.run_dir / "bisect.json", json.dumps(data, indent=2) + "\n")


def _record_for(steps: list[dict[str, Any]], commit: str) -> dict[str, Any] | None:
    recs = [r for r in steps if r.get("commit") == commit and r.get("verdict")]
    return recs[-1] if recs else None
