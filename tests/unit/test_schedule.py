"""--parallel's schedule: how many guests by default, expected durations, LPT shares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.stages import schedule, suites
from harness.stages.suites import select_suites

GIB = 1024 ** 3


def test_default_is_one_guest_per_cpu_at_most_one_per_suite() -> None:
    assert schedule.resolve_parallel(None, 7, "3G", cpus=2, mem_total=64 * GIB)[0] == 2
    assert schedule.resolve_parallel(None, 7, "3G", cpus=16, mem_total=64 * GIB)[0] == 7
    n, why = schedule.resolve_parallel(None, 1, "3G", cpus=4, mem_total=64 * GIB)
    assert n == 1 and "4 host CPU(s), 1 suite(s)" in why


def test_default_is_capped_by_memory_and_says_so() -> None:
    # 8 guests of 3G would take 24G: 70% of 16G is 11.2G, room for 3
    n, why = schedule.resolve_parallel(None, 8, "3G", cpus=8, mem_total=16 * GIB)
    assert n == 3 and "capped at 3 by memory" in why and "16.0G" in why
    # never below one guest, whatever the memory
    assert schedule.resolve_parallel(None, 8, "3G", cpus=8, mem_total=2 * GIB)[0] == 1
    # unknown memory: no cap
    assert schedule.resolve_parallel(None, 8, "1536M", cpus=8, mem_total=0)[0] == 8


def test_explicit_parallel_is_honoured_up_to_the_suites(caplog: pytest.LogCaptureFixture) -> None:
    assert schedule.resolve_parallel(1, 7, "3G", cpus=8, mem_total=64 * GIB) == (1, "--parallel 1")
    n, why = schedule.resolve_parallel(4, 2, "3G", cpus=8, mem_total=64 * GIB)
    assert n == 2 and "2 suite(s) selected" in why
    assert schedule.resolve_parallel(3, 7, "3G", cpus=1, mem_total=4 * GIB)[0] == 3
    assert "more than 70%" in caplog.text


def test_memory_sizes_and_host_facts(tmp_path: Path) -> None:
    assert schedule.memory_bytes("3G") == 3 * GIB
    assert schedule.memory_bytes("1536m") == 1536 * 1024 ** 2
    assert schedule.memory_bytes("2048") == 2 * GIB  # MiB, as QEMU's -m
    with pytest.raises(ValueError):
        schedule.memory_bytes("lots")
    mi = tmp_path / "meminfo"
    mi.write_text("MemFree: 1 kB\nMemTotal:       16384 kB\n")
    assert schedule.host_memory(mi) == 16384 * 1024
    assert schedule.host_memory(tmp_path / "nope") is None
    assert schedule.host_cpus() >= 1


def test_lpt_longest_first_to_the_least_loaded_each_share_in_table_order() -> None:
    chosen = select_suites(None)
    p = schedule.plan(chosen, 2)
    # scenarios[sysctl=1] (370 s) -> 1; scenarios[sysctl=0] (340) -> 2; recharge[sysctl=0]
    # (45) -> 2 (385); recharge[sysctl=1] (30) -> 1 (400); test_memcontrol (20) -> 2 (405);
    # test_kmem (12) -> 1 (412); test_core (2) -> 2 (407)
    assert [[s.name for s in share] for share in p.guests] == [
        ["recharge[sysctl=1]", "scenarios[sysctl=1]", "test_kmem"],
        ["recharge[sysctl=0]", "scenarios[sysctl=0]", "test_memcontrol", "test_core"]]
    assert p.facts()["expected_load_s"] == [412.0, 407.0]
    assert p.guest_of()["scenarios[sysctl=1]"] == "guest-1"
    assert p.guest_of()["test_kmem"] == "guest-1"
    facts = p.facts()
    assert facts["parallel"] == 2 and set(facts["guests"]) == {"guest-1", "guest-2"}
    assert set(facts["expected_from"].values()) == {"table"}
    # one guest: everything, in the selection's order
    assert [s.name for s in schedule.plan(chosen, 1).guests[0]] == [s.name for s in chosen]


def test_lpt_exact_shares() -> None:
    table = tuple(suites.Suite(n, "own", "p", expected_s=d)
                  for n, d in (("a", 5), ("b", 3), ("c", 3), ("d", 2), ("e", 2), ("f", 1)))
    shares = schedule.lpt(table, {s.name: s.expected_s for s in table}, 2)
    # a(5) -> 1, b(3) -> 2, c(3) -> 2 (6), d(2) -> 1 (7), e(2) -> 2 (8), f(1) -> 1 (8)
    assert [[s.name for s in g] for g in shares] == [["a", "d", "f"], ["b", "c", "e"]]
    assert schedule.lpt(table[:1], {"a": 5}, 3) == [[table[0]]]  # never an empty guest


def _record(out: Path, n: int, suites_: dict[str, dict], options: dict | None = None) -> None:
    d = out / str(n)
    d.mkdir(parents=True)
    (d / "metadata.json").write_text(json.dumps({
        "build": {"options": options or {"cases": [], "stress_s": None, "soak_s": None}},
        "results": {"suites": suites_}}))


def test_recorded_durations_come_from_the_newest_comparable_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    opts = {"cases": (), "stress_s": None, "soak_s": None}
    _record(out, 1, {"test_core": {"status": "PASS", "duration_s": 9.0}})
    _record(out, 2, {"test_core": {"status": "PASS", "duration_s": 7.0},
                     "test_kmem": {"status": "SKIP", "duration_s": 0.0},
                     "scenarios[sysctl=1]": {"status": "ERROR", "duration_s": 1800.0}})
    _record(out, 3, {"test_core": {"status": "PASS", "duration_s": 1.0}},
            options={"cases": [], "stress_s": 600, "soak_s": None})  # another stress time
    (out / "4").mkdir()  # a run without a record (e.g. died at once)
    (out / "5").mkdir()  # this run
    names = ["test_core", "test_kmem", "scenarios[sysctl=1]"]
    got, src = schedule.recorded_durations(out, out / "5", names, opts)
    assert got == {"test_core": 7.0} and src == str(out / "2")
    p = schedule.plan([s for s in suites.SUITES if s.name in names], 2, got, src)
    assert p.expected_s["test_core"] == 7.0 and p.source["test_core"] == str(out / "2")
    assert p.expected_s["test_kmem"] == 12.0 and p.source["test_kmem"] == "table"
    assert schedule.recorded_durations(out, out / "1", names, opts) == ({}, None)
    assert schedule.recorded_durations(tmp_path / "none", out / "5", names, opts) == ({}, None)


def test_expected_durations_follow_the_options() -> None:
    scen = [s for s in select_suites(["scenarios"])]
    longer = suites.with_stress_seconds(scen, 600)
    assert [s.expected_s for s in longer] == [370 + 540, 340 + 540]
    one = select_suites(["scenarios"], cases=("lru_hold",))
    assert one[0].expected_s == pytest.approx(370 / len(suites.SCENARIOS_CASES))
    from harness.stages import widenet

    soak = widenet.with_soak_seconds(select_suites(["soak"]), 600)
    assert soak[0].expected_s == 200 + 480
