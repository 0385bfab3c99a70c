"""The verdict of a comparison: can both runs be judged, and what differs between them."""

from __future__ import annotations

from pathlib import Path

from harness.errors import EXIT_FAIL, EXIT_NO_VERDICT, EXIT_PASS
from harness.modes import child as rundir
from harness.modes.child import CaseOutcome, ChildRun
from harness.modes.compare.diff import diff_cases, diff_signatures, diff_warnings
from harness.modes.compare.model import Change, Comparison
from harness.stages.suites import suite_key


def _read_cases(run: ChildRun) -> tuple[dict[tuple[str, str], CaseOutcome], str | None]:
    junit = run.file("junit.xml")
    if junit is None:
        return {}, f"{run.label}: no junit.xml"
    try:
        raw = rundir.read_cases(junit)
    except (OSError, ValueError) as e:
        return {}, f"{run.label}: unreadable junit.xml: {e}"
    out: dict[tuple[str, str], CaseOutcome] = {}
    for (suite, name), case in raw.items():
        key = (suite_key(suite), name)
        # A known failure is written as a pass; compare judges it by what really happened.
        outcome = "xfail" if case.raw == "fail" and case.outcome == "pass" else case.outcome
        out[key] = CaseOutcome(key[0], name, outcome, case.message, case.raw)
    return out, None


def _build_log(run: ChildRun) -> tuple[str, bool]:
    """(build.log text, whether make really ran) of a run."""
    skipped = bool(run.record().group("build_info").get("skipped"))
    p = run.file("build.log")
    text = p.read_text(encoding="utf-8", errors="replace") if p else ""
    return text, bool(p) and not skipped


def setup_failure(run: ChildRun) -> tuple[str, str] | None:
    """(stage, detail) when the run failed before its suites (or left no metadata)."""
    rec = run.record()
    if not rec.groups:
        return ("harness", f"no metadata.json (exit {run.exit_code}; see {run.output_log})")
    fs = rec.failed_stage()
    if fs and fs[0] in rundir.SETUP_STAGES:
        return fs
    return None


def judge(base: ChildRun, patched: ChildRun | None, touched: set[str],
          tree: Path | None = None) -> Comparison:
    """The comparison of two finished runs (``patched`` None: it was not run).

    Exit 0 only when the patched run produced readable results, had a verdict of its
    own (exit 0 or 1) and nothing regressed; results that are missing are never a pass."""
    bfail = setup_failure(base)
    if bfail is not None:
        return Comparison("infrastructure", EXIT_NO_VERDICT,
                          f"the base could not be tested ({bfail[0]}: {bfail[1]}); "
                          "nothing is blamed on the series", base, patched)
    assert patched is not None
    pfail = setup_failure(patched)
    if pfail is not None:
        return Comparison("patched-error", EXIT_NO_VERDICT,
                          f"the patched kernel could not be tested ({pfail[0]}: {pfail[1]}) "
                          "while the base could", base, patched)
    bcases, berr = _read_cases(base)
    if berr is not None:
        return Comparison("infrastructure", EXIT_NO_VERDICT,
                          f"nothing to compare against: {berr}", base, patched)
    pcases, perr = _read_cases(patched)
    if perr is not None:
        return Comparison("patched-error", EXIT_NO_VERDICT,
                          f"{perr} (exit {patched.exit_code}): no results, no pass",
                          base, patched)
    cmp = Comparison("pass", EXIT_PASS, "", base, patched)
    cmp.cases = diff_cases(bcases, pcases)
    _compare_logs(cmp, base, patched, touched, tree)
    n_fail, n_gone = cmp.count(Change.NEW_FAILURE), cmp.count(Change.GONE)
    n_sig, n_warn = len(cmp.new_signatures), len(cmp.new_warnings)
    cmp.detail = ", ".join([f"{n_fail} new failure(s)", f"{n_gone} gone",
                            f"{n_sig} new kernel-log signature(s)",
                            f"{n_warn} new build warning(s)",
                            f"{cmp.count(Change.PRE_EXISTING)} pre-existing"])
    if n_fail or n_gone or n_sig or n_warn:
        cmp.verdict, cmp.exit_code = "regression", EXIT_FAIL
    if patched.exit_code not in (EXIT_PASS, EXIT_FAIL):
        # The patched run itself had no verdict (a suite crashed, timed out, could not
        # run): whatever the differences, it was not shown to pass.
        fs = patched.record().failed_stage()
        why = f"; {fs[0]}: {fs[1][:120]}" if fs else ""
        cmp.verdict, cmp.exit_code = "patched-error", EXIT_NO_VERDICT
        cmp.detail = f"the patched run had no verdict (exit {patched.exit_code}{why}); " \
                     + cmp.detail
    return cmp


def _compare_logs(cmp: Comparison, base: ChildRun, patched: ChildRun, touched: set[str],
                  tree: Path | None) -> None:
    """Kernel-log signatures and build warnings of the two runs, into ``cmp``."""
    bmeta, pmeta = base.record(), patched.record()
    if "kernel_log" not in pmeta.groups:
        cmp.notes.append("patched run recorded no kernel-log scan: signatures not compared")
    cmp.signatures = diff_signatures(bmeta, pmeta)
    blog, bran = _build_log(base)
    plog, pran = _build_log(patched)
    if bran and pran:
        cmp.warnings = diff_warnings(blog, plog, touched, tree)
    else:
        which = " and ".join(n for n, ran in (("base", bran), ("patched", pran)) if not ran)
        cmp.notes.append(f"build warnings not compared: make did not run for the {which} "
                         "(already up to date)")
    cw = bmeta.group("config").get("warnings") or []
    if cw:
        cmp.notes.append(f"base config: {len(cw)} warning(s), e.g. {cw[0]}")
