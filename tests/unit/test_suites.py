"""suites: table, selection, sysctl handling, statuses, raw KTAP files, markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import Interrupted, UserError
from harness.model import Status
from harness.stages import suites
from harness.stages.ssh import CmdResult

from fakes import FakeGuest

KTAP_OK = "TAP version 13\n1..2\nok 1 a\nok 2 b # SKIP no swap\n"
KTAP_FAIL = "TAP version 13\n1..2\nok 1 a\nnot ok 2 b\n"


def _prog_dir(tmp_path: Path, name: str = "test_recharge") -> Path:
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    (d / name).write_text("#!/bin/sh\n")
    return d


def test_table_names_unique_and_selection() -> None:
    names = [s.name for s in suites.SUITES]
    assert len(names) == len(set(names))
    assert {"test_memcontrol", "test_kmem", "test_core"} <= set(names)
    assert [s.name for s in suites.select_suites(["recharge"])] == \
        ["recharge[sysctl=1]", "recharge[sysctl=0]"]
    assert [s.name for s in suites.select_suites(["test_kmem", "test_kmem"])] == ["test_kmem"]
    assert suites.select_suites(None) == [s for s in suites.SUITES if s.default]
    with pytest.raises(UserError, match=r"unknown suite \(valid: recharge\[sysctl=1\]"):
        suites.select_suites(["bogus"])


def test_sets_sysctl_runs_in_cwd_writes_tap_and_markers(tmp_path: Path) -> None:
    suite = suites.Suite("recharge[sysctl=1]", "own", "test_recharge", sysctl=1,
                         needs_sysctl=True, timeout_s=100)
    g = FakeGuest(sysctl="0", program=CmdResult("x", 0, KTAP_OK, "", 1.5))
    run = suites.run_suite(g, suite, _prog_dir(tmp_path), tmp_path / "ktap", timeout_scale=2)
    assert run.status == Status.PASS and run.sysctl == 1 and run.exit_code == 0
    assert (tmp_path / "ktap" / "recharge[sysctl=1].tap").read_text() == KTAP_OK
    prog = [c for c in g.calls if "test_recharge" in c[0]]
    assert prog == [(
        "echo 'RECHARGE-HARNESS: begin recharge[sysctl=1]' > /dev/kmsg; "
        f"stdbuf -oL -eL {tmp_path / 'bin' / 'test_recharge'}; rc=$?; "
        "echo 'RECHARGE-HARNESS: end recharge[sysctl=1]' > /dev/kmsg; exit $rc",
        200, suites.SCRATCH)]
    assert len(g.calls) == 3  # facts, set sysctl, program


def test_missing_sysctl_skips_only_suites_that_need_it(tmp_path: Path) -> None:
    need = suites.Suite("r1", "own", "test_recharge", sysctl=1, needs_sysctl=True)
    ctrl = suites.Suite("r0", "own", "test_recharge", sysctl=0, needs_sysctl=False)
    g = FakeGuest(sysctl=None, program=CmdResult("x", 0, KTAP_OK, "", 1.0))
    r1 = suites.run_suite(g, need, _prog_dir(tmp_path), tmp_path / "k")
    assert r1.status == Status.SKIP and "absent (kernel without the series)" in (r1.error or "")
    r0 = suites.run_suite(g, ctrl, _prog_dir(tmp_path), tmp_path / "k")
    assert r0.status == Status.PASS and r0.sysctl is None


@pytest.mark.parametrize("result,status,why", [
    (CmdResult("x", 1, KTAP_FAIL, "", 1.0), Status.FAIL, None),
    (CmdResult("x", 124, "TAP version 13\nok 1 a\n", "", 9.0, timed_out=True), Status.ERROR,
     "timed out after 600s"),
    (CmdResult("x", None, "", "", 1.0, error="connection lost: EOFError"), Status.ERROR,
     "connection lost"),
    (CmdResult("x", 139, "ok 1 a\n", "", 1.0), Status.ERROR, None),
    (CmdResult("x", 4, "1..0 # SKIP no memory controller\n", "", 1.0), Status.SKIP, None),
])
def test_statuses(tmp_path: Path, result: CmdResult, status: Status, why: str | None) -> None:
    s = suites.Suite("test_memcontrol", "cgroup", "test_memcontrol")
    run = suites.run_suite(FakeGuest(program=result), s, _prog_dir(tmp_path, "test_memcontrol"),
                           tmp_path / "k")
    assert run.status == status
    if why:
        assert why in (run.error or "")


def test_not_available_and_missing_cwd(tmp_path: Path) -> None:
    s = suites.Suite("test_core", "cgroup", "test_core")
    r = suites.run_suite(FakeGuest(), s, None, tmp_path / "k")
    assert r.status == Status.NOTRUN and "not available" in (r.error or "")
    r = suites.run_suite(FakeGuest(), s, tmp_path, tmp_path / "k")
    assert r.status == Status.NOTRUN and "not built" in (r.error or "")
    r = suites.run_suite(FakeGuest(cwd_ok=False), s, _prog_dir(tmp_path, "test_core"),
                         tmp_path / "k")
    assert r.status == Status.ERROR and "guest-setup.sh" in (r.error or "")


def test_guest_death_marks_rest_notrun(tmp_path: Path) -> None:
    table = [suites.Suite("a", "cgroup", "test_core"), suites.Suite("b", "cgroup", "test_core")]
    g = FakeGuest(program=CmdResult("x", None, "", "", 1.0, error="connection lost"))
    runs = suites.run_suites(g, table, {"cgroup": _prog_dir(tmp_path, "test_core")},
                             tmp_path / "k", alive=lambda: False)
    assert [r.status for r in runs] == [Status.ERROR, Status.NOTRUN]
    assert "guest died during a" in (runs[1].error or "")


def test_wrapper_prefixes_the_program_or_reports_it_missing(tmp_path: Path) -> None:
    suite = suites.Suite("test_kmem", "cgroup", "test_kmem", wrapper="ext4-root.sh")
    kdir = _prog_dir(tmp_path, "test_kmem")
    own = tmp_path / "own"
    own.mkdir()
    g = FakeGuest(program=CmdResult("x", 0, KTAP_OK, "", 1.0))
    run = suites.run_suite(g, suite, kdir, tmp_path / "ktap", wrapper_dir=own)
    assert run.status == Status.NOTRUN and "wrapper ext4-root.sh not built" in (run.error or "")
    (own / "ext4-root.sh").write_text("#!/bin/sh\n")
    run = suites.run_suite(g, suite, kdir, tmp_path / "ktap", wrapper_dir=own)
    assert run.status == Status.PASS
    assert f"; {own / 'ext4-root.sh'} stdbuf -oL -eL {kdir / 'test_kmem'}; rc=$?" in g.calls[-1][0]
    table = {s.name: s for s in suites.SUITES}
    assert table["test_kmem"].wrapper == "ext4-root.sh"


def test_stress_seconds_reaches_only_the_scenarios() -> None:
    chosen = suites.select_suites(None)
    assert suites.with_stress_seconds(chosen, None) == chosen
    out = {s.name: s for s in suites.with_stress_seconds(chosen, 600)}
    before = {s.name: s for s in chosen}
    for name, s in out.items():
        if s.program == "scenarios":
            assert s.args[-2:] == ("--stress-seconds", "600")
            assert s.timeout_s == before[name].timeout_s + 600
        else:
            assert s == before[name]
    assert sum(s.program == "scenarios" for s in out.values()) == 2


def test_known_failures_become_xfail_and_nothing_else_does(tmp_path: Path) -> None:
    from harness.parse.ktap import CaseStatus

    known = suites.KnownFailure("b", "base fails too", cpus=2, measured=(("x", 5),))
    suite = suites.Suite("k", "cgroup", "test_kmem", known_failures=(known,))
    kdir = _prog_dir(tmp_path, "test_kmem")
    fail_b = "TAP version 13\n1..2\nok 1 a\nx 5\nnot ok 2 b\n"
    g = FakeGuest(program=CmdResult("x", 1, fail_b, "", 1.0))
    run = suites.run_suite(g, suite, kdir, tmp_path / "ktap")
    assert run.status == Status.PASS and run.exit_code == 1  # the real exit code is kept
    b = dict(run.result.walk())["b"]
    assert b.status is CaseStatus.XFAIL and b.reason == "known failure: base fails too"
    assert b.known == "xfail"
    two = "TAP version 13\n1..3\nnot ok 1 a\nx 5\nnot ok 2 b\nok 3 c\n"
    g = FakeGuest(program=CmdResult("x", 1, two, "", 1.0))
    run = suites.run_suite(g, suite, kdir, tmp_path / "ktap")
    assert run.status == Status.FAIL and "a" in (run.error or "")
    # A known failure that passes is a pass, marked XPASS.
    g = FakeGuest(program=CmdResult("x", 0, KTAP_OK.replace("ok 2 b # SKIP no swap", "ok 2 b"),
                                    "", 1.0))
    run = suites.run_suite(g, suite, kdir, tmp_path / "ktap")
    assert run.status == Status.PASS and dict(run.result.walk())["b"].known == "xpass"


# ------------------------------------------- known failures narrowed to their evidence --

PERCPU_OK = "ok 1 test_kmem_basic\n"


def _percpu(current: int, percpu: int, ok: bool = False) -> str:
    if ok:
        return PERCPU_OK + "ok 2 test_percpu_basic\n"
    return PERCPU_OK + f"memory.current {current}\npercpu {percpu}\nnot ok 2 test_percpu_basic\n"


def _kmem_like() -> suites.Suite:
    real = {s.name: s for s in suites.SUITES}["test_kmem"]
    return suites.Suite("test_kmem", "cgroup", "test_kmem", known_failures=real.known_failures)


@pytest.mark.parametrize("text,ncpu,want", [
    (_percpu(8_912_896, 5_750_400), "2", "xfail"),  # the numbers it was measured with
    (_percpu(8_912_896, 5_746_560), "2", "xfail"),  # the patched kernel's, within tolerance
    (_percpu(8_912_896, 5_750_400), "4", "fail"),  # another CPU count: not that evidence
    (_percpu(8_912_896, 0), "2", "fail"),  # no percpu charged at all: another bug
    (_percpu(90_000_000, 5_750_400), "2", "fail"),  # a leak, not the slab overhead
    (PERCPU_OK + "not ok 2 test_percpu_basic\n", "2", "fail"),  # no numbers printed
    (_percpu(8_912_896, 5_750_400), None, "fail"),  # CPU count unknown
    # The debug kernel's own evidence (its slab objects are larger), base and patched
    (_percpu(12_320_768, 5_760_000), "2-debug", "xfail"),
    (_percpu(12_320_768, 5_742_720), "2-debug", "xfail"),
    (_percpu(12_320_768, 5_760_000), "2", "fail"),  # debug numbers on a non-debug kernel
    (_percpu(8_912_896, 5_750_400), "2-debug", "fail"),  # and the other way round
])
def test_known_failure_only_matches_its_evidence(tmp_path: Path, text: str,
                                                 ncpu: str | None, want: str) -> None:
    debug = ncpu is not None and ncpu.endswith("-debug")
    ncpu = ncpu.removesuffix("-debug") if ncpu else ncpu
    g = FakeGuest(program=CmdResult("x", 1, text, "", 1.0), ncpu=ncpu, debug=debug)
    run = suites.run_suite(g, _kmem_like(), _prog_dir(tmp_path, "test_kmem"), tmp_path / "k")
    case = dict(run.result.walk())["test_percpu_basic"]
    assert case.status.value == want, case.reason
    assert run.status is (Status.PASS if want == "xfail" else Status.FAIL)
    if want == "fail" and "memory.current" in text:
        assert "not the known failure" in case.reason


def test_known_failure_that_passes_is_xpass_reported_not_failing(tmp_path: Path) -> None:
    from harness.report.summary import render_summary

    g = FakeGuest(program=CmdResult("x", 0, _percpu(0, 0, ok=True), "", 1.0), ncpu="2")
    run = suites.run_suite(g, _kmem_like(), _prog_dir(tmp_path, "test_kmem"), tmp_path / "k")
    assert run.status is Status.PASS
    case = dict(run.result.walk())["test_percpu_basic"]
    assert case.known == "xpass"
    text = render_summary([run], [])
    assert "XPASS" in text and "test_percpu_basic" in text and "(exit 0)" in text


def test_case_selection_narrows_the_project_suites_and_their_inventory():
    from harness.stages.suites import select_suites

    got = select_suites(None, cases=("lru_hold", "shmem_read_after"))
    names = [s.name for s in got]
    assert names == ["recharge[sysctl=1]", "recharge[sysctl=0]",
                     "scenarios[sysctl=1]", "scenarios[sysctl=0]"]
    sc = got[2]
    assert sc.cases == ("lru_hold",) and sc.feature_cases == ("lru_hold",)
    assert sc.args[-2:] == ("-t", "lru_hold")
    assert got[0].cases == ("shmem_read_after",)
    # --control stays first for the control variant
    assert got[1].args[0] == "--control"


def test_only_the_control_variant_runs_its_cases_concurrently():
    """Control cases move nothing and only wait: they share the guest; the feature's
    cases must not (one case's recharging would move another's memory)."""
    from harness.stages.suitetable import SUITES

    args = {s.name: s.args for s in SUITES}
    assert args["recharge[sysctl=0]"][:2] == ("--control", "--concurrent")
    assert not any("--concurrent" in a for n, a in args.items() if n != "recharge[sysctl=0]")


def test_case_selection_rejects_an_unknown_case():
    import pytest as _pytest

    from harness.errors import UserError
    from harness.stages.suites import select_suites

    with _pytest.raises(UserError, match="no_such_case"):
        select_suites(["recharge"], cases=("no_such_case",))


def _three(tmp_path: Path) -> tuple[list[suites.Suite], dict[str, Path | None]]:
    table = [suites.Suite(x, "cgroup", "test_core") for x in ("a", "b", "c")]
    return table, {"cgroup": _prog_dir(tmp_path, "test_core")}


@pytest.mark.parametrize("exc,why,rest", [
    (KeyboardInterrupt(), "interrupted by SIGINT", "not run: the run was interrupted"),
    (Interrupted("SIGTERM"), "interrupted by SIGTERM", "not run: the run was interrupted"),
    (OSError(28, "No space left on device"),
     "the run stopped: OSError: [Errno 28] No space left on device",
     "not run: the run stopped: OSError: [Errno 28] No space left on device"),
])
def test_an_exception_keeps_the_suites_that_finished(tmp_path: Path, exc: BaseException,
                                                     why: str, rest: str) -> None:
    """Ctrl-C (or anything else) during suite b: a's result stays in ``into``, b is the
    ERROR, c was not run; the exception goes on."""
    table, dirs = _three(tmp_path)

    def stop(g: FakeGuest, command: str) -> CmdResult:
        raise exc

    g = FakeGuest(program=CmdResult("x", 0, KTAP_OK, "", 1.0), programs={"begin b'": stop})
    runs: list = []
    with pytest.raises(type(exc)):
        suites.run_suites(g, table, dirs, tmp_path / "k", into=runs)
    assert [(r.name, r.status, r.error) for r in runs] == [
        ("a", Status.PASS, None), ("b", Status.ERROR, why), ("c", Status.NOTRUN, rest)]
    assert not [c for c in g.commands if "begin c'" in c]


def test_a_run_stopped_from_elsewhere_ends_after_the_suite_it_cut_off(tmp_path: Path) -> None:
    """``stopped``: another thread stopped the run (and cut off b's command): b is the
    ERROR, c is not started, and nothing is raised here."""
    table, dirs = _three(tmp_path)
    why: list[BaseException] = []

    def cut_off(g: FakeGuest, command: str) -> CmdResult:
        why.append(KeyboardInterrupt())
        return CmdResult(command, None, "", "", 0.5, error="connection lost: EOFError")

    g = FakeGuest(program=CmdResult("x", 0, KTAP_OK, "", 1.0), programs={"begin b'": cut_off})
    runs = suites.run_suites(g, table, dirs, tmp_path / "k", alive=lambda: not why,
                             stopped=lambda: why[0] if why else None)
    assert [(r.name, r.status, r.error) for r in runs] == [
        ("a", Status.PASS, None), ("b", Status.ERROR, "interrupted by SIGINT"),
        ("c", Status.NOTRUN, "not run: the run was interrupted")]
    assert not [c for c in g.commands if "begin c'" in c]


def _memcontrol_like() -> suites.Suite:
    real = {s.name: s for s in suites.SUITES}["test_memcontrol"]
    return suites.Suite("test_memcontrol", "cgroup", "test_memcontrol",
                        known_failures=real.known_failures)


@pytest.mark.parametrize("debug,want", [(True, "xfail"), (False, "fail"), (None, "fail")])
def test_memcg_reclaim_is_known_only_on_a_debug_kernel(tmp_path: Path, debug: bool | None,
                                                       want: str) -> None:
    # It races its own 100 MB allocation (5 s) on a debug kernel under load, base and
    # patched alike; on a non-debug kernel (or one that does not say) a failure counts.
    text = "ok 1 test_memcg_subtree_control\nnot ok 2 test_memcg_reclaim\n"
    g = FakeGuest(program=CmdResult("x", 1, text, "", 1.0), ncpu="2", debug=debug)
    run = suites.run_suite(g, _memcontrol_like(), _prog_dir(tmp_path, "test_memcontrol"),
                           tmp_path / "k")
    case = dict(run.result.walk())["test_memcg_reclaim"]
    assert case.status.value == want, case.reason


def test_a_pass_is_xpass_only_where_the_evidence_applies(tmp_path: Path) -> None:
    # test_memcg_reclaim is known on debug kernels only: passing on a non-debug kernel is
    # just a pass, not an XPASS to check (run 58 of the bench flagged it on the tiny profile)
    text = "ok 1 test_memcg_subtree_control\nok 2 test_memcg_reclaim\n"
    for debug, want in ((False, ""), (True, "xpass")):
        g = FakeGuest(program=CmdResult("x", 0, text, "", 1.0), ncpu="2", debug=debug)
        run = suites.run_suite(g, _memcontrol_like(), _prog_dir(tmp_path, "test_memcontrol"),
                               tmp_path / "k")
        assert dict(run.result.walk())["test_memcg_reclaim"].known == want
