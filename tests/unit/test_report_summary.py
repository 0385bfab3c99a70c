"""Summary table, verdict, shard split and junit merge."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.model import StageResult, Status, SuiteRun
from harness.parse.ktap import parse_ktap
from harness.parse.logscan import Finding
from harness.report.junit import write_junit
from harness.report.merge import merge_junit, parse_shard, shard
from harness.report.summary import EXIT_CODES, render_summary, run_counts, verdict

DATA = Path(__file__).resolve().parent.parent / "data" / "ktap"


def _run(name: str, text: str, status: Status, error: str | None = None, sysctl: int | None = None) -> SuiteRun:
    return SuiteRun(name, status, 31.0, text, 0, error, sysctl, parse_ktap(text, name))


def _stage(name: str, status: Status = Status.PASS, detail: str = "", dur: float = 1.0) -> StageResult:
    return StageResult(name=name, status=status, duration_s=dur, log=None, detail=detail)


STAGES = [_stage("source", dur=0.4), _stage("build", dur=552.0), _stage("boot", dur=12.3)]


def test_table_and_verdict_fail() -> None:
    memcontrol = (DATA / "memcontrol-6.12-noplan.tap").read_text()
    runs = [
        _run("recharge", "ok 1 a\nok 2 b # SKIP x\n", Status.PASS, sysctl=0),
        _run("memcontrol", memcontrol, Status.FAIL, sysctl=1),
    ]
    text = render_summary(runs, STAGES)
    lines = text.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "TIME", "PASS", "FAIL", "SKIP", "ERR", "FIRST", "FAILURES"]
    assert "stage build" in lines[2] and "9m12.0s" in lines[2]
    row = next(line for line in lines if "memcontrol[sysctl=1]" in line)
    assert row.split()[2:9] == ["FAIL", "31.0s", "12", "1", "1", "0", "test_memcg_low"]
    ok_row = next(line for line in lines if "recharge[sysctl=0]" in line)
    assert ok_row.split()[2:] == ["pass", "31.0s", "1", "0", "1", "0"]
    assert lines[-1] == "verdict: FAIL - 1 suite(s) failed: memcontrol[sysctl=1] (exit 1)"
    # fixed width: every table row has its STATUS column at the same offset
    offset = lines[0].index("STATUS")
    assert all(line[offset - 2 : offset] == "  " for line in lines[1:-1])


def test_verdict_rules() -> None:
    ok = _run("a", "ok 1 x\n", Status.PASS)
    assert verdict([ok], STAGES) == (Status.PASS, "1 suite(s) passed")
    assert verdict([], STAGES)[0] is Status.ERROR
    broken = [*STAGES, _stage("build", Status.FAIL, "make exited 2")]
    assert verdict([ok], broken) == (Status.ERROR, "stage build fail: make exited 2")
    assert verdict([ok], [*STAGES, _stage("suites", Status.FAIL)])[0] is Status.PASS  # test stage: runs decide
    assert verdict([ok, _run("b", "", Status.NOTRUN)], STAGES)[0] is Status.ERROR
    assert verdict([_run("s", "1..0 # SKIP x\n", Status.SKIP)], STAGES)[0] is Status.SKIP
    warn = Finding("warning", "WARNING in f", "warning: f", 1, "x", False)
    oom = Finding("oom", "oom", "oom: x", 1, "x", False)
    assert verdict([ok], STAGES, {("a", "x"): [warn]})[0] is Status.FAIL
    assert verdict([ok], STAGES, {("a", "x"): [oom]})[0] is Status.PASS
    assert (EXIT_CODES[Status.PASS], EXIT_CODES[Status.FAIL], EXIT_CODES[Status.ERROR]) == (0, 1, 2)


def test_summary_with_run_error_and_findings() -> None:
    dead = _run("recharge", "TAP version 13\n1..3\nok 1 a\n", Status.ERROR, error="VM died", sysctl=1)
    assert run_counts(dead) == {"pass": 1, "fail": 0, "skip": 2, "error": 0}
    warn = Finding("warning", "WARNING in mem_cgroup_foo", "warning: f", 1, "x", False, count=3)
    text = render_summary([dead], STAGES, {("recharge[sysctl=1]", "a"): [warn]})
    row = next(line for line in text.splitlines() if line.startswith("suite recharge"))
    assert row.endswith("VM died")
    assert "  recharge[sysctl=1] a: WARNING in mem_cgroup_foo (x3)" in text
    assert text.splitlines()[-1].startswith("verdict: NO VERDICT - 1 suite(s) did not complete")


def test_shard_round_robin() -> None:
    items = ["recharge", "memcontrol", "kmem", "core", "pids"]
    parts = [shard(items, i, 2) for i in (1, 2)]
    # sorted: core kmem memcontrol pids recharge -> positions 0,2,4 | 1,3
    assert parts == [["recharge", "memcontrol", "core"], ["kmem", "pids"]]
    assert sorted(parts[0] + parts[1]) == sorted(items)
    # independent of input order; output keeps input order
    assert sorted(shard(list(reversed(items)), 1, 2)) == sorted(parts[0])
    assert shard(items, 1, 1) == items
    assert shard(["a"], 3, 3) == []
    for bad in ((0, 2), (3, 2), (1, 0)):
        with pytest.raises(ValueError):
            shard(items, *bad)


def test_parse_shard() -> None:
    assert parse_shard("2/4") == (2, 4)
    assert parse_shard(" 1 / 1 ") == (1, 1)
    for bad in ("0/3", "4/3", "x", "1/0", "1-2"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def test_merge_junit(tmp_path: Path) -> None:
    a, b = tmp_path / "a.xml", tmp_path / "b.xml"
    write_junit([_run("s1", "ok 1 x\nnot ok 2 y\n", Status.FAIL)], a, {"shard": "1/2"})
    write_junit([_run("s2", "ok 1 z\n", Status.PASS)], b, {"shard": "2/2"})
    garbage = tmp_path / "c.xml"
    garbage.write_text("not xml at all")
    out = tmp_path / "merged.xml"
    merge_junit([a, b, garbage, tmp_path / "missing.xml"], out)
    root = ET.parse(out).getroot()
    names = [s.get("name") for s in root.iter("testsuite")]
    assert names == ["s1", "s2", "merge"]
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "1", "2")
    props = {p.get("value") for p in root.iter("property") if p.get("name") == "merge.source"}
    assert props == {str(a), str(b)}
    merge_cases = [
        c.get("name") for s in root.iter("testsuite") if s.get("name") == "merge" for c in s.iter("testcase")
    ]
    assert merge_cases == [str(garbage), str(tmp_path / "missing.xml")]
