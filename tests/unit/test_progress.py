"""Live progress: each case as it finishes on a terminal, one line per suite otherwise."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from harness.parse.ktap import CaseStatus, top_level_plan, top_level_result
from harness.report.progress import CaseProgress, mmss
from harness.stages import suites
from harness.stages.ssh import CmdResult

from fakes import FakeGuest


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.t = 50.0

    def __call__(self) -> float:
        return self.t


def test_top_level_lines_only() -> None:
    assert top_level_result("ok 7 zombie_file") == (7, "zombie_file", CaseStatus.PASS)
    assert top_level_result("not ok 2 - b # SKIP no swap\n") == (2, "b", CaseStatus.SKIP)
    assert top_level_result("not ok 3 c")[2] is CaseStatus.FAIL  # type: ignore[index]
    assert top_level_result("    ok 1 nested") is None
    assert top_level_result("# ok 1 diag") is None
    assert top_level_result("TAP version 13") is None
    assert top_level_plan("1..16") == 16 and top_level_plan("  1..3") is None


def test_case_lines_with_position_outcome_and_time() -> None:
    clock, out = Clock(), Tty()
    p = CaseProgress("scenarios[sysctl=1]", 16, out, clock=clock)
    for _ in range(6):
        p.line("ok 1 x")
    clock.t += 58
    p.line("# zombie_file: 2 zombies")
    p.line("ok 7 zombie_file")
    clock.t += 3
    p.line("not ok 8 limit_max")
    clock.t += 1
    p.line("ok 9 thp_shmem # SKIP no THP")
    text = out.getvalue().splitlines()
    assert text[6:] == ["scenarios[sysctl=1] 7/16 zombie_file ok 0:58",
                        "scenarios[sysctl=1] 8/16 limit_max FAIL 0:03",
                        "scenarios[sysctl=1] 9/16 thp_shmem skip 0:01"]
    assert mmss(3725) == "1:02:05"


def test_plan_is_the_total_when_no_inventory_and_silent_off_terminal() -> None:
    out = io.StringIO()
    p = CaseProgress("s", None, out)
    p.line("1..2")
    p.line("ok 1 a")
    assert out.getvalue() == "" and p.lines == ["s 1/2 a ok 0:00"]
    q = CaseProgress("s", None, io.StringIO(), tty=True)
    q.line("ok 1 a")
    assert q.lines == ["s 1/? a ok 0:00"]


def test_run_suite_streams_cases_to_a_terminal_and_logs_one_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ktap = "TAP version 13\n1..2\nok 1 a\nok 2 b # SKIP no swap\n"
    d = tmp_path / "bin"
    d.mkdir()
    (d / "test_recharge").write_text("#!/bin/sh\n")
    suite = suites.Suite("recharge[sysctl=1]", "own", "test_recharge", sysctl=1,
                         cases=("a", "b"))
    g = FakeGuest(sysctl="0", program=CmdResult("x", 0, ktap, "", 1.0))
    tty = Tty()
    with caplog.at_level(logging.INFO, logger="harness.stages.suites"):
        run = suites.run_suite(g, suite, d, tmp_path / "ktap", progress_stream=tty)
    assert run.status.name == "PASS"
    assert [l.split(" 0:")[0] for l in tty.getvalue().splitlines()] == [
        "recharge[sysctl=1] 1/2 a ok", "recharge[sysctl=1] 2/2 b skip"]
    done = [r.message for r in caplog.records if "->" in r.message]
    assert len(done) == 1 and "recharge[sysctl=1] -> PASS (2 cases: 1 ok, 1 skip, 0:00)" in done[0]
    quiet = io.StringIO()
    suites.run_suite(g, suite, d, tmp_path / "ktap", progress_stream=quiet)
    assert quiet.getvalue() == ""
