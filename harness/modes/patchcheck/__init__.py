"""Per-patch check (ktest's patchcheck, our way): every prefix of the series.

``recharge-harness patchcheck [--boot] [--checkpatch-allow FILE] [run options]``

In the harness's cache worktree (never the user's checkout) and its one build
directory (``O=``, shared with ``run``, so every build is incremental):

0. the base is configured and built; its warnings are the starting point;
1. for patch k = 1..n: check out base + patches 1..k (the series is applied once
   with ``git am --3way``; a patch that does not apply is reported, later ones
   are not run), configure (options only later patches define are warnings
   until the last prefix, where every option must be there, as in ``run``), build;
   then ``scripts/checkpatch.pl --strict`` on patch k, and the **new compiler
   warnings in the files patch k touches**: warnings located in those files
   whose (file, message) no earlier prefix showed.  So that an incremental
   build reports them, the objects of the C files that patch k and patch k+1
   touch are deleted before building (harness.parse.buildlog);
2. ``--boot``: ``run`` on the final prefix (as a child run: selftests, boot,
   suites; the kernel build is reused).

Checkpatch findings listed in the allow-list are reported as "allowed", not
failures.  The list is ``--checkpatch-allow FILE``, else ``checkpatch-allow.txt``
next to the series file, else the project's ``checkpatch-allow.txt`` (kept out
of ``patches/``, which exporting the series regenerates).  Its format is in
harness.parse.checkpatch: ``<patch file or glob> <regex>  # reason`` per finding.

One table (``summary.txt``), ``patchcheck.json``, ``junit.xml``; one exit code:
0 every patch clean; 1 a checkpatch finding, a new warning or a failed suite;
2 something could not be checked (the base or a prefix does not apply, configure
or build; checkpatch could not run; the boot run had no verdict).

Layout: :mod:`~harness.modes.patchcheck.check` is the table's logic over a
:class:`~harness.modes.patchcheck.check.Steps`, :mod:`~harness.modes.patchcheck.kernel`
the real steps, :mod:`~harness.modes.patchcheck.report` the files.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from harness.errors import EXIT_FAIL, EXIT_NO_VERDICT, EXIT_PASS, UserError
from harness.model import Status
from harness.modes.patchcheck.check import Result, Steps, check_series
from harness.modes.patchcheck.kernel import KernelSteps
from harness.modes.patchcheck.report import fmt_duration, render, to_json, write_junit
from harness.parse.checkpatch import LEVELS, load_allow
from harness.paths import atomic_write
from harness.report.mode import mode_run

if TYPE_CHECKING:
    from harness.model import Options

log = logging.getLogger(__name__)

ALLOW_FILE = "checkpatch-allow.txt"


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("patchcheck")
    g.add_argument("--boot", action="store_true",
                   help="also boot the final prefix and run the suites (a `run`)")
    g.add_argument("--checkpatch-allow", type=Path, metavar="FILE",
                   help=f"allowed checkpatch findings (default: {ALLOW_FILE} next to the "
                        "series file, else in the project)")
    g.add_argument("--fail-on", choices=[lv.lower() for lv in LEVELS], default="check",
                   help="lowest checkpatch level that fails a patch (default: check, "
                        "i.e. everything --strict reports)")


def default_allow_list(series_file: Path, project: Path, given: Path | None) -> Path | None:
    """The allow-list to use (see the module doc); None when there is none."""
    if given is not None:
        if not given.is_file():
            raise UserError(f"--checkpatch-allow {given}: no such file")
        return given
    for cand in (series_file.parent / ALLOW_FILE, project / ALLOW_FILE):
        if cand.is_file():
            return cand
    return None


@contextlib.contextmanager
def _timed(what: str) -> Iterator[None]:
    start = time.monotonic()
    yield
    log.info("patchcheck: %s took %s", what, fmt_duration(time.monotonic() - start))


def main(opts: "Options", args: argparse.Namespace,
         steps: Steps | None = None) -> tuple[int, str]:
    from harness.stages import apply as series

    series_file = opts.series or (opts.project / "patches" / "series")
    ser = series.read_series(series_file, required=True)
    if ser.empty:
        raise UserError(f"{series_file}: no patches: nothing to check")
    allow = default_allow_list(series_file, opts.project, args.checkpatch_allow)
    rules = load_allow(allow)
    with mode_run(opts, "patchcheck", series=str(series_file),
                  allow_list=str(allow or "")) as mr:
        run_dir = mr.run_dir
        log.info("patchcheck: %d patches from %s; run directory %s", len(ser.patches),
                 series_file, run_dir)
        result = Result([])
        header = f"patchcheck: {len(ser.patches)} patches ({series_file})"
        try:
            if steps is None:
                with KernelSteps(opts, run_dir) as ks, _timed("apply + build of every prefix"):
                    base = f"{ks.src.base_ref} ({ks.src.base_commit[:12]})"
                    header += f" on {base}"
                    result = check_series(ser.patches, ks, rules, fail_on=args.fail_on.upper(),
                                          base_label=f"base {base}")
            else:
                result = check_series(ser.patches, steps, rules, fail_on=args.fail_on.upper())
            if args.boot:
                result.boot = _boot_final_prefix(opts, args, run_dir, result)
        finally:
            code = result.exit_code if result.rows else EXIT_NO_VERDICT
            verdict = {EXIT_PASS: "PASS", EXIT_FAIL: "FAIL"}.get(code, "NO VERDICT")
            text = render(result, f"{header} - {verdict} (exit {code})") if result.rows else \
                f"{header} - interrupted\n"
            mr.write_summary(text)
            data = to_json(result)
            atomic_write(run_dir / "patchcheck.json", json.dumps(data, indent=2) + "\n")
            if result.rows:
                write_junit(result, run_dir / "junit.xml")
            mr.finish(code, verdict.lower(), group=("patchcheck", data))
    sys.stdout.write(text)
    sys.stdout.flush()
    bad = [r for r in result.rows if r.verdict is not Status.PASS]
    why = ", ".join(f"{r.index}: {r.verdict.name.lower()}" for r in bad) or "every patch clean"
    return code, f"patchcheck: {verdict} (exit {code}): {why} - {run_dir}"


def _boot_final_prefix(opts: "Options", args: argparse.Namespace, run_dir: Path,
                       result: Result) -> tuple[Status, str]:
    """``--boot``: a child ``run`` of the whole series, if the final prefix built."""
    from harness.modes import child as rundir

    if not (result.rows and result.rows[-1].build is Status.PASS):
        return Status.NOTRUN, "not run: the final prefix did not build"
    fwd = rundir.forward_args(args, drop=("out", "series"))
    series_arg = ["--series", str(opts.series)] if opts.series else []
    child = rundir.run_child("boot", ["run", *series_arg, *fwd], run_dir / "boot",
                             run_dir / "boot.log", verbose=bool(getattr(args, "verbose", False)))
    st = {0: Status.PASS, 1: Status.FAIL}.get(child.exit_code, Status.ERROR)
    return st, rundir.describe(child)
