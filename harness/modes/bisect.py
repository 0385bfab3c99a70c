"""Bisect a user's tree with the harness as the ``git bisect run`` predicate.

``recharge-harness bisect --tree PATH --good A --bad B [--suite NAME ...]
[--retries N] [--boot-failure good|bad|skip] [--series FILE] [run options]``,
or ``recharge-harness bisect --resume out/<N>`` after an interruption.

Nothing of the user's repository is written: the harness's shadow repository of
the tree (the one ``run --tree`` uses; it borrows the tree's objects) gets a
private worktree ``<cache>/worktrees/bisect-<id>`` without a checkout, and
``git bisect start --no-checkout`` runs there (bisect state is per worktree).

1. A must be an ancestor of B; the predicate must call A good and B bad
   (else exit 2: nothing to bisect);
2. ``git bisect run <python> -m harness.modes.bisect step <run_dir>``: each step reads
   ``BISECT_HEAD`` and calls the predicate (harness.modes.predicate), by default a child
   ``recharge-harness run --tree PATH --base <commit>`` (empty series unless
   ``--series``), then:

   ===================================  =========================================
   the run                              git bisect
   ===================================  =========================================
   passed (exit 0)                      good (0)
   a test failed / kernel-log finding   bad (1)
   apply/config/build failed            skip (125)
   boot failed                          ``--boot-failure`` (default skip)
   no verdict otherwise (SSH, timeout)  abort (255): the bisect stops, exit 2
   ===================================  =========================================

   ``--retries N``: an attempt that is not good (test failure, boot failure, no
   verdict) is repeated up to N times; one good attempt makes the commit good
   (the failure was flaky; the step is marked so).  Build failures are not retried;
3. at the end the first bad commit is printed with its evidence (failing cases,
   kernel-log signatures, the run directory); ``git bisect reset`` and the
   worktree is removed, whatever happened.

Files in ``out/<N>/``: ``bisect-state.json`` (what to resume), ``bisect.log``
(``git bisect log``, saved at every step: ``git bisect replay`` it), ``steps.jsonl``
(one JSON per evaluated commit: verdict, attempts, evidence), ``bisect.json``
(everything at the end), ``git-bisect-run.log``, ``summary.txt``, and
``steps/<commit>-<attempt>/`` (each attempt's harness run).

The predicate is injectable (``--predicate module:function`` or
``/path/file.py:function``): a callable taking a ``StepContext`` and returning
an ``Observation`` (see harness.modes.predicate).  Exit codes: 0 the first bad commit was
found; 2 otherwise (endpoints not as claimed, only skipped commits left, abort).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import gitutil, proc
from harness.errors import EXIT_NO_VERDICT, EXIT_PASS, UserError
from harness.modes.predicate import (
    DEFAULT_PREDICATE,
    Observation,
    Predicate,
    StepContext,
    Verdict,
    absolute_spec,
    load_predicate,
)
from harness.paths import atomic_write

if TYPE_CHECKING:
    from harness.model import Options

__all__ = ["ACTION_EXIT", "BisectState", "Bisector", "Observation", "Outcome", "StepContext",
           "Verdict", "action_for", "combine", "evaluate", "main", "step_main"]

log = logging.getLogger(__name__)

STATE_FILE = "bisect-state.json"
STEPS_FILE = "steps.jsonl"
LOG_FILE = "bisect.log"
BISECT_RUN_TIMEOUT_S = 14 * 24 * 3600.0


#: What git exports to the command of ``git bisect run`` that names a repository.
GIT_REPO_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_INDEX_FILE", "GIT_PREFIX",
                "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES")

#: What ``git bisect run`` is told, by exit code.
ACTION_EXIT = {"good": 0, "bad": 1, "skip": 125, "abort": 255}


# ------------------------------------------------------------------ state --


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


def _append_step(run_dir: Path, record: dict[str, Any]) -> None:
    with open(run_dir / STEPS_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


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
            _append_step(run_dir, rec)
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
            _append_step(run_dir, {"commit": commit, "subject": subject, "role": role,
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
    _append_step(run_dir, rec)
    return rec


def _save_log(worktree: Path, run_dir: Path) -> None:
    res = gitutil.git(worktree, ["bisect", "log"], check=False)
    if res.returncode == 0 and res.output.strip():
        atomic_write(run_dir / LOG_FILE, res.output)


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
        _save_log(wt, run_dir)
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


# ------------------------------------------------------------- the driver --


@dataclass
class Outcome:
    status: str
    exit_code: int
    detail: str
    first_bad: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    duration_s: float = 0.0


_FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit", re.M)
_ANY_OF = re.compile(r"could be any of:\n((?:[0-9a-f]{40}\n?)+)")


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
            _save_log(self.wt, self.run_dir)
            if not _FIRST_BAD.search(text) and "could be any of" not in text:
                text = self._bisect_run()
            _save_log(self.wt, self.run_dir)
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
                    _save_log(self.wt, self.run_dir)
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
        top = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (top, os.environ.get("PYTHONPATH")) if p)
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


# ---------------------------------------------------------------- reports --


def _dur(s: float) -> str:
    return f"{int(s) // 60}m{int(s) % 60:02d}s" if s >= 60 else f"{s:.1f}s"


def render(state: BisectState, outcome: Outcome, run_dir: Path) -> str:
    lines = []
    if outcome.status == "found" and outcome.first_bad:
        fb = outcome.first_bad
        lines.append(f"bisect: first bad commit {fb['commit']} {fb.get('subject', '')}")
        bad = [a for a in fb.get("attempts", []) if a.get("verdict") != "good"]
        ev = bad[0] if bad else None
        if ev is not None:
            lines.append(f"  verdict: {ev['verdict']}: {ev['detail']}")
            e = ev.get("evidence", {})
            for c in e.get("failed_cases", [])[:5]:
                lines.append(f"  failed:  {c}")
            for sig in e.get("signatures", [])[:5]:
                lines.append(f"  kernel log: {sig}")
            if e.get("run_dir"):
                lines.append(f"  run:     {e['run_dir']}")
    else:
        lines.append(f"bisect: {outcome.status.upper()}: {outcome.detail}")
    lines += ["", f"{'step':<12} {'commit':<12}  {'verdict':<14} {'git':<6} {'tries':<5} "
                  f"{'time':>7}  subject"]
    for r in outcome.steps:
        if not r.get("verdict"):
            continue
        tries = len(r.get("attempts", [])) or "-"
        flag = " (flaky)" if r.get("flaky") else (" (cached)" if r.get("cached") else "")
        lines.append(f"{r['role']:<12} {r['commit'][:12]:<12}  {r['verdict']:<14} "
                     f"{r['action']:<6} {tries!s:<5} {_dur(r.get('duration_s', 0.0)):>7}  "
                     f"{r.get('subject', '')[:60]}{flag}")
    n = sum(1 for r in outcome.steps if r.get("verdict") and not r.get("cached"))
    lines += ["", f"{n} commit(s) evaluated in {_dur(outcome.duration_s)}; "
                  f"range {state.good[:12]}..{state.bad[:12]}",
              f"log: {run_dir / LOG_FILE} (replay in a clone: git bisect replay "
              f"{run_dir / LOG_FILE}); steps: {run_dir / 'bisect.json'}"]
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------- cli --


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("bisect")
    g.add_argument("--good", metavar="REV", help="a commit of --tree that passes")
    g.add_argument("--bad", metavar="REV", help="a later commit of --tree that fails")
    g.add_argument("--retries", type=int, default=0, metavar="N",
                   help="repeat a non-good attempt up to N times; one good attempt makes the "
                        "commit good (flaky), default 0")
    g.add_argument("--boot-failure", choices=("good", "bad", "skip"), default="skip",
                   help="what a kernel that does not boot counts as (default: skip)")
    g.add_argument("--resume", type=Path, metavar="RUN_DIR",
                   help="continue an interrupted bisect from its run directory")
    g.add_argument("--predicate", default=DEFAULT_PREDICATE, metavar="SPEC",
                   help="MODULE:FUNCTION or FILE.py:FUNCTION judging a commit (default: "
                        "a harness run)")


def resolve_range(opts: "Options", args: argparse.Namespace) -> tuple[Path, str, str]:
    """(tree, good sha, bad sha), or UserError before anything is created."""
    if opts.tree is None or not args.good or not args.bad:
        raise UserError("bisect needs --tree PATH --good REV --bad REV (or --resume RUN_DIR)")
    if opts.base is not None:
        raise UserError("bisect tests each commit itself: give --good/--bad, not --base")
    if args.retries < 0:
        raise UserError(f"--retries {args.retries}: must be 0 or more")
    tree = opts.tree.expanduser().resolve()
    shas = {}
    for opt, ref in (("--good", args.good), ("--bad", args.bad)):
        sha = gitutil.rev_parse(tree, ref)
        if sha is None:
            raise UserError(f"{opt} {ref}: no such commit in {tree}")
        shas[opt] = sha
    good, bad = shas["--good"], shas["--bad"]
    if good == bad or gitutil.git(tree, ["merge-base", "--is-ancestor", good, bad],
                                  check=False).returncode != 0:
        raise UserError(f"--good {args.good} must be an ancestor of --bad {args.bad}")
    load_predicate(args.predicate)  # fail before anything runs
    return tree, good, bad


def new_state(opts: "Options", args: argparse.Namespace, run_dir: Path,
              tree: Path, good: str, bad: str) -> BisectState:
    from harness.modes import child as rundir
    from harness.stages import source

    src = source.tree_source(opts.cache, tree, bad)
    empty = run_dir / "empty.series"
    empty.write_text("# empty: each bisected commit is tested as is\n")
    wid = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:10]
    return BisectState(
        tree=str(tree), good=good, bad=bad, good_ref=args.good, bad_ref=args.bad,
        repo=str(src.repo), worktree=str(opts.cache / "worktrees" / f"bisect-{wid}"),
        predicate=absolute_spec(args.predicate),
        params={"tree": str(tree), "series": str(opts.series or empty),
                "forward": rundir.forward_args(args, drop=("out", "series", "base", "tree")),
                "verbose": bool(getattr(args, "verbose", False))},
        retries=args.retries, boot_failure=args.boot_failure)


def main(opts: "Options", args: argparse.Namespace) -> tuple[int, str]:
    from harness.report.mode import make_run_dir, mode_run

    if args.resume is not None:
        run_dir = args.resume.expanduser().resolve()
        state = BisectState.load(run_dir)
        if state.status in ("found", "ambiguous", "not-verified"):
            raise UserError(f"--resume {run_dir}: that bisect already ended ({state.status}: "
                            f"{state.detail})")
        log.info("bisect: resuming %s (%s)", run_dir, state.status)
    else:
        tree, good, bad = resolve_range(opts, args)
        run_dir = make_run_dir(opts.out)
        state = new_state(opts, args, run_dir, tree, good, bad)
        state.save(run_dir)
    log.info("bisect: %s..%s in %s (run directory %s)", state.good[:12], state.bad[:12],
             state.tree, run_dir)
    bis = Bisector(state, run_dir)
    with mode_run(opts, "bisect", run_dir=run_dir) as mr:
        try:
            outcome = bis.run()
        except KeyboardInterrupt:
            log.error("bisect: interrupted; resume with: recharge-harness bisect --resume %s",
                      run_dir)
            raise
        text = render(state, outcome, run_dir)
        mr.write_summary(text)
        mr.finish(outcome.exit_code, outcome.status,
                  group=("bisect", {"good": state.good, "bad": state.bad, "tree": state.tree,
                                    "status": outcome.status, "detail": outcome.detail}))
    sys.stdout.write(text)
    sys.stdout.flush()
    return outcome.exit_code, f"bisect: {outcome.status} (exit {outcome.exit_code}): " \
                              f"{outcome.detail} - {run_dir}"


if __name__ == "__main__":  # `git bisect run` calls: python -m harness.modes.bisect step RUN_DIR
    # Run the step from the importable module, not this __main__ copy: predicates import
    # harness.modes.bisect, and its Verdict must be the one the step compares against.
    from harness.modes.bisect import step_main as _step_main

    raise SystemExit(_step_main(sys.argv[1:]))
