"""CI scale-out helpers: split the test selection into shards, merge shard reports.

Sharding is done by the CI matrix, not by us (issue 5 item 6): every shard
runs ``--shard I/N`` over the same selection and writes its own junit.xml;
one final job runs ``merge`` over all of them.

:func:`shard` is round-robin over the *sorted, de-duplicated* names: the
name at sorted position ``p`` (0-based) belongs to shard ``p % N + 1``.  So
the split depends only on the set of names (not on their order, the machine
or Python's hash seed), every name lands in exactly one shard, and shard
sizes differ by at most one.  Shard indexes are 1-based, as in ``--shard 1/3``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

__all__ = ["MERGE_SUITE", "merge_junit", "parse_shard", "shard"]

MERGE_SUITE = "merge"

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``; raises ValueError on anything else or out of range."""
    m = _SHARD.match(text)
    if not m:
        raise ValueError(f"bad shard {text!r}: expected I/N, e.g. 1/3")
    index, total = int(m.group(1)), int(m.group(2))
    _check(index, total)
    return index, total


def _check(index: int, total: int) -> None:
    if total < 1:
        raise ValueError(f"bad shard count {total}: must be at least 1")
    if not 1 <= index <= total:
        raise ValueError(f"bad shard index {index}: must be between 1 and {total}")


def shard(items: list[str], index: int, total: int) -> list[str]:
    """The items of shard ``index`` (1-based) of ``total``, in their input order.

    Round-robin over ``sorted(set(items))``; duplicates of a selected name are
    all kept.  Raises ValueError for an index outside ``1..total``.
    """
    _check(index, total)
    ordered = sorted(set(items))
    mine = {name for pos, name in enumerate(ordered) if pos % total == index - 1}
    return [item for item in items if item in mine]


def _stats(xml: JUnitXml) -> None:
    totals = [0, 0, 0, 0]
    time = 0.0
    for ts in xml:
        tests = failures = errors = skipped = 0
        for case in ts:
            tests += 1
            kinds = {type(r) for r in case.result}
            if Error in kinds:
                errors += 1
            elif Failure in kinds:
                failures += 1
            elif Skipped in kinds:
                skipped += 1
        ts.tests, ts.failures, ts.errors, ts.skipped = tests, failures, errors, skipped
        totals = [totals[0] + tests, totals[1] + failures, totals[2] + errors, totals[3] + skipped]
        time += ts.time or 0.0
    xml.tests, xml.failures, xml.errors, xml.skipped = totals
    xml.time = round(time, 3)


def merge_junit(inputs: list[Path], out: Path) -> None:
    """Concatenate the testsuites of several junit.xml files into ``out``.

    Testsuites keep their names and contents; each gets a ``merge.source``
    property naming its input file.  An input that is missing or not JUnit XML
    does not stop the merge: it becomes an error testcase in a ``merge``
    testsuite, so a crashed shard turns the merged report red instead of
    silently vanishing.  ``out`` is written atomically.
    """
    merged = JUnitXml()
    problems: list[tuple[Path, str]] = []
    for path in inputs:
        path = Path(path)
        try:
            doc = JUnitXml.fromfile(str(path))
        except (OSError, ValueError, SyntaxError) as exc:  # ParseError is a SyntaxError
            problems.append((path, f"{type(exc).__name__}: {exc}"))
            continue
        suites = [doc] if isinstance(doc, TestSuite) else list(doc)
        if not suites:
            problems.append((path, "no testsuite in file"))
        for ts in suites:
            ts.add_property("merge.source", str(path))
            merged.append(ts)
    if problems:
        bad = TestSuite(MERGE_SUITE)
        for path, why in problems:
            tc = TestCase(name=str(path), classname=MERGE_SUITE)
            tc.result = [Error(message=f"unreadable shard report: {why}", type_="merge")]
            bad.append(tc)
        merged.append(bad)
    _stats(merged)
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    merged.write(str(tmp), pretty=True)
    os.replace(tmp, out)
