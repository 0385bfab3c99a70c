"""``merge``: combine the run directories of CI shards into one report.

Each shard is an ordinary run (``run --shard I/N``) on its own machine; the CI
system collects their run directories (or just their ``junit.xml`` and
``metadata.json``) and one last job calls::

    recharge-harness merge --out merged shard1/ shard2/ shard3/

which writes ``merged/<N>/junit.xml`` (every testsuite of every shard, each with a
``merge.source`` property; an unreadable shard report becomes an error case),
``merged/<N>/metadata.json`` (the shards' metadata under ``shards``, with the
combined verdict) and ``merged/<N>/summary.txt``.

Exit code: the worst of the shards' own exit codes (from their metadata) and of
the merged JUnit (error -> 2, failure -> 1), so a shard that never reached a
verdict keeps the merged result at 2 even if its junit.xml looks clean.  A
shard selection that does not cover every shard index, or covers one twice,
is reported as an error case as well.  The inventory is checked over the union
of the shards: every case a shard's kernel required to pass (harness.stages.inventory)
must pass in the merged report, else a ``merge.inventory`` failure (exit 1).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from junitparser import Error, Failure, JUnitXml, TestCase, TestSuite

from harness import record
from harness.errors import EXIT_FAIL, EXIT_NO_VERDICT, EXIT_PASS, UserError
from harness.report.merge import MERGE_SUITE, merge_junit
from harness.report.mode import open_record

__all__ = ["Shard", "add_arguments", "load_shards", "merge_runs"]


@dataclass(frozen=True)
class Shard:
    """One input: a run directory (or a bare junit.xml) and what its metadata says."""

    source: Path
    junit: Path
    metadata: dict[str, Any] | None
    exit_code: int | None  # from metadata.json; None when unknown
    shard: str | None  # "I/N" from the run's options, if it was a shard


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", type=Path, metavar="RUN_DIR_OR_JUNIT",
                   help="shard run directories (with junit.xml and metadata.json) or junit.xml files")
    p.add_argument("--out", type=Path, default=Path("out"),
                   help="parent of the numbered run directory to write (default: ./out)")


def load_shards(inputs: list[Path]) -> list[Shard]:
    shards = []
    for item in inputs:
        item = item.expanduser()
        if item.is_dir():
            junit, meta_path = item / "junit.xml", item / "metadata.json"
        elif item.is_file() or item.suffix == ".xml":
            junit, meta_path = item, item.with_name("metadata.json")
        else:
            raise UserError(f"merge: {item}: no such run directory or junit.xml")
        rec = record.load(meta_path.parent)
        meta = rec.as_dict() if meta_path.is_file() and rec.groups else None
        opts = rec.group("build").get("options", {})
        shards.append(Shard(item, junit, meta, rec.exit_code, opts.get("shard")))
    return shards


def _coverage_problems(shards: list[Shard]) -> list[str]:
    """Shard indexes missing or duplicated among the inputs (when they are shards)."""
    seen: dict[int, int] = {}
    totals = set()
    for s in shards:
        if not s.shard:
            continue
        i, n = (int(x) for x in s.shard.split("/"))
        totals.add(n)
        seen[i] = seen.get(i, 0) + 1
    if not totals:
        return []
    if len(totals) > 1:
        return [f"shards of different splits: /{', /'.join(map(str, sorted(totals)))}"]
    n = totals.pop()
    out = [f"shard {i}/{n} missing" for i in range(1, n + 1) if i not in seen]
    out += [f"shard {i}/{n} given {k} times" for i, k in sorted(seen.items()) if k > 1]
    return out


def _junit_code(path: Path) -> int:
    xml = JUnitXml.fromfile(str(path))
    suites = [xml] if isinstance(xml, TestSuite) else list(xml)
    code = EXIT_PASS
    for ts in suites:
        for case in ts:
            kinds = {type(r) for r in case.result}
            if Error in kinds:
                return EXIT_NO_VERDICT
            if Failure in kinds:
                code = EXIT_FAIL
    return code


def _inventory_problems(shards: list[Shard], junit: Path) -> list[str]:
    """The inventory over the union of the shards (harness.stages.inventory.check_merged),
    written into the merged junit.xml as failures of a ``merge.inventory`` testsuite."""
    from harness.modes import child as rundir
    from harness.stages import inventory, suites

    outcomes = {k: v.outcome for k, v in rundir.read_cases(junit).items()}
    problems = inventory.check_merged([s.metadata or {} for s in shards], outcomes,
                                     suites.suite_key)
    if problems:
        xml = JUnitXml.fromfile(str(junit))
        bad = TestSuite(f"{MERGE_SUITE}.inventory")
        for p in problems:
            tc = TestCase(name=p, classname=MERGE_SUITE)
            tc.result = [Failure(message=p, type_="inventory")]
            bad.append(tc)
        xml.append(bad)
        xml.update_statistics()
        tmp = junit.with_name("junit.xml.tmp")
        xml.write(str(tmp), pretty=True)
        os.replace(tmp, junit)
    return problems


def merge_runs(shards: list[Shard], run_dir: Path,
               argv: list[str] | tuple[str, ...] = ("merge",)) -> tuple[int, str]:
    """Write junit.xml, metadata.json and summary.txt into ``run_dir``; (exit code, line)."""
    junit = run_dir / "junit.xml"
    merge_junit([s.junit for s in shards], junit)
    problems = _coverage_problems(shards)
    if problems:
        xml = JUnitXml.fromfile(str(junit))
        bad = TestSuite(f"{MERGE_SUITE}.coverage")
        for p in problems:
            tc = TestCase(name=p, classname=MERGE_SUITE)
            tc.result = [Error(message=p, type_="merge")]
            bad.append(tc)
        xml.append(bad)
        xml.update_statistics()
        tmp = junit.with_name("junit.xml.tmp")
        xml.write(str(tmp), pretty=True)
        os.replace(tmp, junit)
    inv = _inventory_problems(shards, junit)
    code = _junit_code(junit)
    problems += inv
    for s in shards:
        if s.exit_code is None and s.metadata is not None:
            code = max(code, EXIT_NO_VERDICT)  # a shard that never finished
        elif s.exit_code is not None:
            code = max(code, s.exit_code)
    lines = [f"{'SHARD':<10} {'EXIT':>4}  SOURCE"]
    for s in shards:
        lines.append(f"{s.shard or '-':<10} {'?' if s.exit_code is None else s.exit_code:>4}  "
                     f"{s.source}")
    lines += [f"problem: {p}" for p in problems]
    word = {EXIT_PASS: "PASS", EXIT_FAIL: "FAIL"}.get(code, "NO VERDICT")
    line = f"merge: {word} (exit {code}) over {len(shards)} shard(s) - {junit}"
    lines.append(line)
    (run_dir / "summary.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    mr = open_record(run_dir, "merge", argv)
    mr.meta.update("merge", {"inputs": [str(s.source) for s in shards], "problems": problems,
                             "exit_code": code})
    mr.meta.put("shards", [{"source": str(s.source), "shard": s.shard, "exit_code": s.exit_code,
                            "metadata": s.metadata} for s in shards])
    mr.finish(code, word.lower())
    print("\n".join(lines[:-1]))
    return code, line
