"""Base versus patched: only what the series changed counts against it.

``recharge-harness compare [run options]`` runs the harness twice as a black box
(:mod:`harness.modes.child`), in ``out/<N>/base/`` and ``out/<N>/patched/``:

1. the base: the same tree, ``--base``, profile, fragments and test selection,
   with an empty series (so options only the series defines, such as
   ``CONFIG_MEMCG_RECHARGE_OFFLINE_ENABLED``, are warnings: docs/design.md);
2. the patched kernel: the series applied (``--series`` or ``patches/series``).

If the base cannot be set up (source, config, build, boot: any stage before the
suites), the verdict is **infrastructure** (exit 2) and the patched kernel is not
run: nothing can be blamed on the series (the syz-cluster rule).

Then only differences are reported (a testcase is matched by suite and name; a name
without an exact match also by the name with its numbers masked, since some mm
selftests print counts that vary per run in subtest names):

* **new failure**: a testcase that fails/errors on patched but passed, was
  skipped or did not exist on base (a known failure counts by its raw status:
  base pass, patched xfail is a new failure);
* **gone**: a testcase the base ran (pass/fail/error/xfail) that the patched run
  skipped or did not report: lost coverage, counted like a new failure;
* **new kernel-log signature**: a failing finding on patched whose normalised
  signature the base did not show;
* **new build warning**: a compiler warning (file + message) in the patched build
  log that the base build log lacks, in a file the series touched or that the
  base build compiled (before the base build, the objects of the C files the
  series touches are deleted so both builds recompile them: harness.parse.buildlog).

Failures the base shares are **pre-existing** (shown, not counted).  A patched
kernel that does not apply, build or boot while the base does, a patched run
without a readable ``junit.xml``, or one that ended with no verdict of its own
(exit 2: a suite crashed, timed out or could not run) is verdict
**patched-error** (exit 2; the differences are still listed): missing results
are never a pass.  A base without readable results is **infrastructure**.
Otherwise exit 1 for any regression, else 0.

Outputs in ``out/<N>/``: ``junit.xml`` (one testcase per compared case, one outcome each:
failure for regressions and gone cases, skipped for pre-existing and not-run ones), ``summary.txt`` (the table),
``compare.json`` and ``metadata.json``.

Layout: :mod:`~harness.modes.compare.runner` runs the two children,
:mod:`~harness.modes.compare.diff` classifies what differs (the
:mod:`~harness.modes.compare.model` types), :mod:`~harness.modes.compare.judge` turns
that into the verdict, and :mod:`~harness.modes.compare.report` writes the files.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from harness.errors import EXIT_NO_VERDICT
from harness.modes.child import ChildRunner
from harness.modes.compare.model import Comparison
from harness.modes.compare.report import to_json, write_reports
from harness.modes.compare.runner import run_compare
from harness.report.mode import mode_run

if TYPE_CHECKING:
    from harness.model import Options

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``compare`` takes exactly the ``run`` options (added by the CLI): both runs use them."""
    p.epilog = ("Runs `run` twice: out/<N>/base (empty series) and out/<N>/patched; exit 0 no "
                "regression, 1 regression, 2 base or patched could not be tested.")




def main(opts: "Options", args: argparse.Namespace,
         runner: ChildRunner | None = None) -> tuple[int, str]:
    """``compare``: returns (exit code, verdict line)."""
    with mode_run(opts, "compare") as mr:
        run_dir = mr.run_dir
        log.info("compare: run directory %s", run_dir)
        cmp = Comparison("infrastructure", EXIT_NO_VERDICT, "interrupted")
        try:
            cmp = run_compare(opts, args, run_dir, runner)
        finally:
            text = write_reports(cmp, run_dir)
            mr.finish(cmp.exit_code, cmp.verdict, group=("compare", to_json(cmp)))
    sys.stdout.write(text)
    sys.stdout.flush()
    return cmp.exit_code, f"compare: {cmp.verdict} (exit {cmp.exit_code}): {cmp.detail} - {run_dir}"
