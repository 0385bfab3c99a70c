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

Layout: :mod:`~harness.modes.bisect.driver` runs the bisection
(:class:`~harness.modes.bisect.driver.Bisector`), :mod:`~harness.modes.bisect.step` is
one step (``python -m harness.modes.bisect step``), :mod:`~harness.modes.bisect.state`
what is kept in the run directory, :mod:`~harness.modes.bisect.report` the summary.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness import gitutil
from harness.errors import UserError
from harness.modes.bisect.driver import Bisector
from harness.modes.bisect.report import render
from harness.modes.bisect.state import BisectState, Outcome
from harness.modes.bisect.step import ACTION_EXIT, action_for, combine, evaluate, step_main
from harness.modes.predicate import (
    DEFAULT_PREDICATE,
    Observation,
    StepContext,
    Verdict,
    absolute_spec,
    load_predicate,
)

if TYPE_CHECKING:
    from harness.model import Options

__all__ = ["ACTION_EXIT", "BisectState", "Bisector", "Observation", "Outcome", "StepContext",
           "Verdict", "action_for", "combine", "evaluate", "main", "step_main"]

log = logging.getLogger(__name__)


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
