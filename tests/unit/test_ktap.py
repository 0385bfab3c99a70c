"""KTAP parser: golden pairs (tests/data/ktap/*.tap -> *.json) plus targeted cases.

Regenerate the goldens after a deliberate change with
``UPDATE_GOLDEN=1 python -m pytest tests/unit/test_ktap.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.model import Status
from harness.parse.ktap import CaseStatus, KtapResult, parse_ktap
from harness.verdict import suite_status as judge

DATA = Path(__file__).resolve().parent.parent / "data" / "ktap"
SAMPLES = sorted(DATA.glob("*.tap"))


def test_samples_present() -> None:
    assert len(SAMPLES) >= 8


@pytest.mark.parametrize("tap", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_golden(tap: Path) -> None:
    got = parse_ktap(tap.read_text(), tap.stem).to_dict()
    golden = tap.with_suffix(".json")
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(json.dumps(got, indent=2) + "\n")
    assert got == json.loads(golden.read_text())


def _statuses(result: KtapResult) -> dict[str, str]:
    return {name: case.status.value for name, case in result.walk()}


def test_memcontrol_612_without_header_or_plan() -> None:
    r = parse_ktap((DATA / "memcontrol-6.12-noplan.tap").read_text(), "memcontrol")
    assert r.version is None and r.plan is None and r.errors == ()
    assert len(r.cases) == 14
    assert [c.number for c in r.cases] == list(range(1, 15))
    low = r.cases[3]
    assert (low.name, low.status) == ("test_memcg_low", CaseStatus.FAIL)
    # stderr text printed before the result belongs to that case; printk is dropped
    assert low.diagnostics == ("memory.low prevents from allocating anon memory",)
    assert all("oom-killer" not in d for _, c in r.walk() for d in c.diagnostics)
    # kselftest.h's "ok N # SKIP name" form: the name comes after the directive
    swap = r.cases[9]
    assert (swap.name, swap.status) == ("test_memcg_swap_max_peak", CaseStatus.SKIP)
    assert r.counts()["pass"] == 12


def test_runner_prefix_nesting() -> None:
    r = parse_ktap((DATA / "runner-cgroup.tap").read_text(), "cgroup")
    assert r.plan == 5 and [c.number for c in r.cases] == [1, 2, 3, 4, 5]
    st = _statuses(r)
    assert st["selftests: cgroup: test_kmem"] == "fail"
    assert st["selftests: cgroup: test_kmem.test_kmem_memcg_deletion"] == "fail"
    assert st["selftests: cgroup: test_kmem.test_percpu_basic"] == "pass"
    assert st["selftests: cgroup: test_memcontrol"] == "timeout"
    assert st["selftests: cgroup: test_zswap"] == "skip"
    kmem = r.cases[1]
    assert kmem.reason == "exit=1"
    assert kmem.subtests[1].diagnostics[0] == "memory.current = 8835072"
    assert kmem.diagnostics == ("timeout set to 45", "selftests: cgroup: test_kmem")
    # "1..0 # SKIP why" of the nested program gives the runner's bare SKIP its reason
    assert r.cases[4].reason == "zswap isn't enabled"
    # the nested program's Totals line stays with that program, not the top level
    assert r.totals is None
    assert "Totals: pass:2 fail:0 xfail:0 xpass:0 skip:0 error:0" in r.cases[3].diagnostics


def test_indented_ktap_nesting_two_and_four_spaces() -> None:
    r = parse_ktap((DATA / "ktap-v1-nested.tap").read_text(), "kunit")
    st = _statuses(r)
    assert st["memcg_recharge.recharge_params.sysctl=1"] == "fail"
    assert st["memcg_recharge.recharge_params.sysctl=0"] == "pass"
    assert st["memcg_other.other_case"] == "skip"
    assert len(r.cases) == 2


def test_skip_all() -> None:
    r = parse_ktap("1..0 # SKIP memory controller isn't available\n", "x")
    assert r.cases == () and r.plan == 0
    assert r.skip_all == "memory controller isn't available"
    assert judge(r, 4) == (Status.SKIP, "memory controller isn't available")


def test_plan_larger_than_seen_synthesises_errors() -> None:
    r = parse_ktap("TAP version 13\n1..4\nok 1 a\nok 3 c\n", "x")
    assert r.errors == ("plan said 4, saw 2",)
    missing = [c for c in r.cases if c.missing]
    assert [c.number for c in missing] == [2, 4]
    assert all(c.status is CaseStatus.ERROR and c.reason == "plan said 4, saw 2" for c in missing)
    assert judge(r, 0)[0] is Status.ERROR


def test_plan_at_end_and_extra_cases() -> None:
    r = parse_ktap("ok 1 a\nok 2 b\nok 3 c\n1..2\n", "x")
    assert r.plan == 2
    assert r.errors == ("plan said 2, saw 3",)
    assert not any(c.missing for c in r.cases)


def test_bail_out() -> None:
    r = parse_ktap((DATA / "bail-out.tap").read_text(), "x")
    assert r.bail_out == "cg_create failed: No such file or directory (2)"
    assert r.totals == {"pass": 1, "fail": 1, "xfail": 0, "xpass": 0, "skip": 0, "error": 0}
    assert [c.name for c in r.cases if c.missing] == ["missing_3", "missing_4", "missing_5"]
    assert "bailed out" in r.cases[-1].reason


@pytest.mark.parametrize(
    ("line", "name", "status", "reason"),
    [
        ("ok 1 - name # SKIP no swap", "name", CaseStatus.SKIP, "no swap"),
        ("ok 1 name # SKIP no swap", "name", CaseStatus.SKIP, "no swap"),
        ("ok 1 name # skip lower case", "name", CaseStatus.SKIP, "lower case"),
        ("not ok 1 name # SKIP", "name", CaseStatus.SKIP, ""),
        ("ok 3 # SKIP test_memcg_sock", "test_memcg_sock", CaseStatus.SKIP, "test_memcg_sock"),
        ("ok 4 # XFAIL name", "name", CaseStatus.XFAIL, "name"),
        ("not ok 5 # error name", "name", CaseStatus.ERROR, "name"),
        ("ok 6 name # XPASS why", "name", CaseStatus.XPASS, "why"),
        ("not ok 7 n # TIMEOUT 45 seconds", "n", CaseStatus.TIMEOUT, "45 seconds"),
        ("not ok 8 n # TODO later", "n", CaseStatus.XFAIL, "TODO later"),
        ("ok 9 n # TODO later", "n", CaseStatus.PASS, "TODO later"),
        ("not ok 10 selftests: cgroup: t # exit=1", "selftests: cgroup: t", CaseStatus.FAIL, "exit=1"),
        ("ok 11 n #  message", "n", CaseStatus.PASS, "message"),
        ("ok 12", "case_12", CaseStatus.PASS, ""),
        ("not ok 13 name with spaces", "name with spaces", CaseStatus.FAIL, ""),
    ],
)
def test_result_line_forms(line: str, name: str, status: CaseStatus, reason: str) -> None:
    (case,) = parse_ktap(line + "\n", "x").cases
    assert (case.name, case.status, case.reason) == (name, status, reason)


def test_printk_lines_ignored_anywhere() -> None:
    text = "TAP version 13\n[    3.141592] random: crng init done\n# [   12.5] printk\nok 1 a\n<6>[   13.000001] foo\n1..1\n"
    r = parse_ktap(text, "x")
    assert r.errors == () and len(r.cases) == 1 and r.cases[0].diagnostics == ()


def test_no_output_and_garbage() -> None:
    r = parse_ktap("", "x")
    assert r.cases == () and r.plan is None
    r = parse_ktap("Segmentation fault\n", "x")
    assert r.cases == () and r.diagnostics == ("Segmentation fault",)
    assert judge(r, 1) == (Status.ERROR, "no KTAP results (exit 1)")


def test_nested_block_without_parent_result_is_error() -> None:
    # the runner was killed while the program ran: no "ok N selftests: ..." line
    text = "TAP version 13\n1..1\n# selftests: cgroup: test_memcontrol\n# ok 1 test_memcg_min\n"
    r = parse_ktap(text, "x")
    (case,) = r.cases
    assert case.status is CaseStatus.ERROR and case.subtests[0].name == "test_memcg_min"


def test_judge() -> None:
    ok = parse_ktap("ok 1 a\nok 2 b # SKIP x\n", "x")
    assert judge(ok, 0) == (Status.PASS, "")
    assert judge(ok, None)[0] is Status.ERROR
    assert judge(ok, 139) == (Status.ERROR, "exit code 139: program crashed or was killed")
    assert judge(ok, 1)[0] is Status.FAIL  # 6.12 memcontrol exits 1 only when a case failed
    fail = parse_ktap("ok 1 a\nnot ok 2 b\n", "x")
    assert judge(fail, 1) == (Status.FAIL, "1 failed: b")
    skipped = parse_ktap("ok 1 a # SKIP\n", "x")
    assert judge(skipped, 4)[0] is Status.SKIP
    assert judge(None, 4)[0] is Status.SKIP
    assert judge(None, 0)[0] is Status.ERROR


def test_multiple_sections_sum_plans() -> None:
    r = parse_ktap((DATA / "multi-section.tap").read_text(), "x")
    assert r.plan == 5
    assert r.errors == ("plan said 3, saw 2",)
    assert [c.number for c in r.cases] == [1, 2, 1, 2, 3]


# ------------------------------------------------------------- strict judging --


@pytest.mark.parametrize("text,exit_code,why", [
    # the kernel's suites print no plan: a stream cut mid-test ends with that test's lines
    ("ok 1 a\nok 2 b\nmemory.current 123\n", 0, "ends mid-test"),
    ("ok 1 a\nok 2 b\nnot o", 0, "ends mid-test"),
    ("ok 1 a\nok 1 a\n", 0, "duplicate test number 1"),
    ("TAP version 13\n1..2\nok 1 a\nok 1 b\n", 0, "duplicate test number 1"),
    ("ok 1 a\nok 3 c\n", 0, "out of sequence: expected 2, got 3"),
    ("TAP version 13\n1..2\nok 2 b\nok 1 a\n", 0, "out of sequence: expected 1, got 2"),
    ("1..0\n", 0, "1..0 without # SKIP"),
    ("1..0 # no reason given\n", 4, "1..0 without # SKIP"),
])
def test_incomplete_or_inconsistent_streams_are_errors(text: str, exit_code: int,
                                                       why: str) -> None:
    status, reason = judge(parse_ktap(text, "x"), exit_code)
    assert status is Status.ERROR and why in reason, reason


def test_skip_all_with_a_failing_exit_code_is_a_failure() -> None:
    r = parse_ktap("1..0 # SKIP memory controller isn't available\n", "x")
    assert judge(r, 1)[0] is Status.FAIL
    assert judge(r, 4)[0] is Status.SKIP and judge(r, 0)[0] is Status.SKIP


def test_complete_streams_stay_clean() -> None:
    # a plan-less kernel suite that ran to its end; sections that restart numbering;
    # kselftest's Totals line after the last result
    assert judge(parse_ktap("ok 1 a\nok 2 b\n", "x"), 0) == (Status.PASS, "")
    two = "TAP version 13\n1..1\nok 1 a\nTAP version 13\n1..2\nok 1 b\nok 2 c\n"
    assert parse_ktap(two, "x").errors == ()
    totals = "TAP version 13\n1..1\nok 1 a\n# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0\n"
    assert judge(parse_ktap(totals, "x"), 0) == (Status.PASS, "")
    nested = "TAP version 13\n1..1\n# TAP version 13\n# 1..2\n# ok 1 a\n# ok 2 b\nok 1 prog\n"
    assert parse_ktap(nested, "x").errors == ()
