"""Differences between the base and the patched run: test cases, kernel-log signatures,
compiler warnings (each classified by :class:`~harness.modes.compare.model.Change`)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from harness.modes.child import CaseOutcome
from harness.modes.compare.model import CaseDiff, Change, SignatureDiff, WarningDiff
from harness.parse import buildlog
from harness.record import RunRecord

log = logging.getLogger(__name__)


#: Outcomes of a case that ran (anything but skipped or absent).
RAN = ("pass", "fail", "error", "xfail")

#: A number in a case name that is not part of a word ("196 pages", "run 3", "=64"; not
#: the 2 of "test_v2"): some mm selftests (pagemap_ioctl) print counts that vary per run.
_COUNT = re.compile(r"(?<![A-Za-z_0-9])\d+")

CaseKey = tuple[str, str]


def _loose(key: CaseKey) -> CaseKey:
    return key[0], _COUNT.sub("N", key[1])


def renamed_cases(base: dict[CaseKey, CaseOutcome],
                  patched: dict[CaseKey, CaseOutcome]) -> dict[CaseKey, CaseKey]:
    """Patched key -> base key for cases whose names differ only in their numbers.

    Only names without an exact match on the other side take part, within one suite,
    paired in the order they appear: a count in a subtest name that changed between the
    runs must not show as one case gone and another new."""
    unmatched: dict[CaseKey, list[CaseKey]] = {}
    for k in base:
        if k not in patched and _loose(k) != k:
            unmatched.setdefault(_loose(k), []).append(k)
    out: dict[CaseKey, CaseKey] = {}
    for k in patched:
        candidates = unmatched.get(_loose(k)) if k not in base else None
        if candidates:
            out[k] = candidates.pop(0)
    return out


def diff_cases(base: dict[CaseKey, CaseOutcome],
               patched: dict[CaseKey, CaseOutcome]) -> list[CaseDiff]:
    """Every case of either run, classified (patched order first, then base-only ones).

    A case is matched by its exact (suite, name), else by :func:`renamed_cases` (the
    row then has the patched run's name).

    GONE: the base ran it and the patched run did not (absent or skipped), a loss of
    coverage that counts as a regression: a series that stops a test from running
    must not pass."""
    out: list[CaseDiff] = []
    renamed = renamed_cases(base, patched)
    paired = set(renamed.values())
    for key in list(patched) + [k for k in base if k not in patched and k not in paired]:
        b, p = base.get(renamed.get(key, key)), patched.get(key)
        if b is not None and b.outcome in RAN and (p is None or p.outcome == "skip"):
            change = Change.GONE
            msg = f"base: {b.outcome}; patched: " + \
                ("absent" if p is None else f"skipped ({p.message})")
        elif p is None:
            change, msg = Change.SAME, f"skipped on base ({b.message if b else ''}), absent"
        elif p.bad:
            change = Change.PRE_EXISTING if b is not None and b.bad else Change.NEW_FAILURE
            msg = p.message
        elif b is None:
            change, msg = Change.NEW_CASE, ""
        elif b.bad:
            change, msg = Change.FIXED, b.message
        else:
            change, msg = Change.SAME, ""
        out.append(CaseDiff(key[0], key[1], b.outcome if b else None,
                            p.outcome if p else None, change, msg))
    return out


def diff_signatures(base_rec: RunRecord, patched_rec: RunRecord) -> list[SignatureDiff]:
    """Failing kernel-log signatures: new on patched, shared with base, or gone."""
    def index(rec: RunRecord) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for f in rec.failing_findings():
            out.setdefault(f.signature, {"suite": f.suite, "case": f.case, "kind": f.kind,
                                         "signature": f.signature})
        return out

    b, p = index(base_rec), index(patched_rec)

    def where(f: dict[str, str]) -> str:
        return ".".join(x for x in (f.get("suite", ""), f.get("case", "")) if x)

    diffs = [SignatureDiff(sig, f.get("kind", ""), where(f),
                           Change.PRE_EXISTING if sig in b else Change.NEW_FAILURE)
             for sig, f in p.items()]
    diffs += [SignatureDiff(sig, f.get("kind", ""), where(f), Change.GONE)
              for sig, f in b.items() if sig not in p]
    return diffs


def diff_warnings(base_log: str, patched_log: str, touched: set[str],
                  tree: Path | None = None) -> list[WarningDiff]:
    """Compiler warnings new on patched.

    Counted (NEW_FAILURE) when located in a file the series touched, or in a file
    the base build compiled (so its absence on base is known); otherwise listed as
    unverified (NEW_CASE): incremental builds do not recompile everything.
    """
    before = buildlog.parse_warnings(base_log, tree)
    after = buildlog.parse_warnings(patched_log, tree)
    compiled = buildlog.compiled_sources(base_log)
    out: list[WarningDiff] = []
    for w in buildlog.new_warnings(before, after):
        known = w.file in touched or w.file in compiled
        out.append(WarningDiff(w, Change.NEW_FAILURE if known else Change.NEW_CASE))
    return out


def series_touched(series_file: Path) -> set[str]:
    """Files the patches of a series file change (read from the patch files)."""
    from harness.stages.apply import read_series

    files: set[str] = set()
    try:
        ser = read_series(series_file, required=False)
    except Exception as e:  # the patched run reports a bad series properly
        log.debug("compare: cannot read %s: %s", series_file, e)
        return files
    for p in ser.patches:
        files.update(buildlog.touched_files(p.path.read_text(encoding="utf-8", errors="replace")))
    return files
