"""compare: base vs patched, judged from the files two (fake) harness runs leave behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import cli
from harness.modes import child as rundir
from harness.modes.child import CaseOutcome, ChildRun
from harness.modes.compare.diff import diff_cases
from harness.modes.compare.judge import judge
from harness.modes.compare.model import Change
from harness.modes.compare.report import render
from harness.modes.compare.report import write_junit as write_compare_junit
from harness.stages import suites

PASSED = {s: "PASS" for s in ("source", "apply", "config", "build", "selftests", "boot",
                              "guest-setup", "suites", "report")}


def junit(cases: dict[tuple[str, str], str]) -> str:
    """A junit.xml with the given (suite, case) -> pass|fail|error|skip."""
    suites: dict[str, list[str]] = {}
    for (suite, name), outcome in cases.items():
        body = {"pass": "", "fail": '<failure message="boom" type="fail"/>',
                "error": '<error message="crashed" type="error"/>',
                "skip": '<skipped message="no sysctl"/>'}[outcome]
        suites.setdefault(suite, []).append(
            f'<testcase name="{name}" classname="{suite}">{body}</testcase>')
    return "<testsuites>" + "".join(
        f'<testsuite name="{s}">{"".join(cs)}</testsuite>' for s, cs in suites.items()
    ) + "</testsuites>\n"


def make_run(out: Path, *, exit_code: int, stages: dict[str, str] | None = None,
             cases: dict[tuple[str, str], str] | None = None,
             findings: list[dict[str, str]] | None = None, build_log: str | None = None,
             skipped_build: bool = False, label: str = "run") -> ChildRun:
    rd = out / "1"
    rd.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "results": {"stages": {k: {"status": v, "detail": f"{k} detail"}
                               for k, v in (stages or PASSED).items()},
                    "exit_code": exit_code},
        "build_info": {"skipped": skipped_build},
        "kernel_log": {"findings": findings or []},
        "config": {"warnings": []},
    }
    (rd / "metadata.json").write_text(json.dumps(meta))
    if cases is not None:
        (rd / "junit.xml").write_text(junit(cases))
    if build_log is not None:
        (rd / "build.log").write_text(build_log)
    return ChildRun(label, exit_code, rd, out / "child.log", 1.0)


BASE_CASES = {("recharge[sysctl=1]", "mapped"): "skip",
              ("recharge[sysctl=1]", "deferred"): "skip",
              ("test_memcontrol", "test_memcg_subtree_control"): "pass",
              ("test_memcontrol", "test_memcg_oom_group_score_events"): "fail",
              ("test_core", "test_cgcore_destroy"): "fail"}
BASE_LOG = ("  CC      mm/memcontrol.o\n  CC      mm/vmscan.o\n"
            "/w/worktrees/debian-6.12/mm/vmscan.c:120:7: warning: old one [-Wunused-variable]\n")


def test_diff_cases_classifies_every_case() -> None:
    b = {k: CaseOutcome(*k, v) for k, v in {("s", "a"): "pass", ("s", "b"): "fail",
                                             ("s", "c"): "fail", ("s", "d"): "pass",
                                             ("s", "gone"): "pass"}.items()}
    p = {k: CaseOutcome(*k, v) for k, v in {("s", "a"): "fail", ("s", "b"): "error",
                                             ("s", "c"): "pass", ("s", "d"): "skip",
                                             ("s", "new"): "fail", ("s", "new2"): "pass"}.items()}
    got = {d.name: d.change for d in diff_cases(b, p)}
    assert got == {"a": Change.NEW_FAILURE, "b": Change.PRE_EXISTING, "c": Change.FIXED,
                   "d": Change.GONE,  # pass -> skip: the patched run lost it
                   "new": Change.NEW_FAILURE, "new2": Change.NEW_CASE,
                   "gone": Change.GONE}


def test_case_names_differing_only_in_a_count_are_the_same_case() -> None:
    """Some mm selftests (pagemap_ioctl) print a count that varies between runs in a
    subtest name: base and patched rows still pair up, exact names first."""
    b = {k: CaseOutcome(*k, v) for k, v in {
        ("mm", "pagemap_ioctl.Page testing: 196 pages"): "pass",
        ("mm", "pagemap_ioctl.run 1 of 2"): "pass",
        ("mm", "pagemap_ioctl.run 2 of 2"): "pass",
        ("mm", "test_v1"): "pass",
        ("mm", "x 7"): "pass"}.items()}
    p = {k: CaseOutcome(*k, v) for k, v in {
        ("mm", "pagemap_ioctl.Page testing: 202 pages"): "fail",
        ("mm", "pagemap_ioctl.run 2 of 2"): "pass",
        ("mm", "pagemap_ioctl.run 3 of 2"): "pass",
        ("mm", "test_v2"): "pass",  # a digit glued to a word is part of the name
        ("other", "x 8"): "pass"}.items()}  # only within one suite
    got = {(d.name, d.base, d.patched): d.change for d in diff_cases(b, p)}
    assert got == {
        ("pagemap_ioctl.Page testing: 202 pages", "pass", "fail"): Change.NEW_FAILURE,
        ("pagemap_ioctl.run 2 of 2", "pass", "pass"): Change.SAME,
        ("pagemap_ioctl.run 3 of 2", "pass", "pass"): Change.SAME,  # paired with "run 1 of 2"
        ("test_v2", None, "pass"): Change.NEW_CASE,
        ("x 8", None, "pass"): Change.NEW_CASE,
        ("test_v1", "pass", None): Change.GONE,
        ("x 7", "pass", None): Change.GONE,
    }


def test_regression_only_differences_count(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", exit_code=1, cases=BASE_CASES, build_log=BASE_LOG,
                    findings=[{"suite": "test_core", "case": "test_cgcore_destroy",
                               "kind": "warning", "signature": "WARNING in css_release"}],
                    label="base")
    patched_cases = dict(BASE_CASES)
    patched_cases[("recharge[sysctl=1]", "mapped")] = "pass"
    patched_cases[("recharge[sysctl=1]", "deferred")] = "fail"
    patched = make_run(
        tmp_path / "patched", exit_code=1, cases=patched_cases, label="patched",
        findings=[{"suite": "test_core", "case": "test_cgcore_destroy", "kind": "warning",
                   "signature": "WARNING in css_release"},
                  {"suite": "recharge[sysctl=1]", "case": "deferred", "kind": "warning",
                   "signature": "WARNING in memcg_recharge_deferred_fn"},
                  {"suite": "test_memcontrol", "case": "x", "kind": "oom",
                   "signature": "oom-kill in test_memcontrol"}],
        build_log=BASE_LOG + "/w/worktrees/debian-6.12/mm/vmscan.c:131:7: warning: old one "
        "[-Wunused-variable]\n/w/worktrees/debian-6.12/mm/memcontrol.c:9:1: warning: new one "
        "[-Wmissing-prototypes]\n/w/worktrees/debian-6.12/fs/inode.c:3:1: warning: "
        "elsewhere [-Wfoo]\n")
    cmp = judge(base, patched, {"mm/memcontrol.c", "include/linux/memcontrol.h"})
    assert (cmp.verdict, cmp.exit_code) == ("regression", 1)
    new = [(c.suite, c.name) for c in cmp.cases if c.change is Change.NEW_FAILURE]
    assert new == [("recharge[sysctl=1]", "deferred")]
    pre = {c.name for c in cmp.cases if c.change is Change.PRE_EXISTING}
    assert pre == {"test_memcg_oom_group_score_events", "test_cgcore_destroy"}
    assert [s.signature for s in cmp.new_signatures] == ["WARNING in memcg_recharge_deferred_fn"]
    # the moved old warning is not new; fs/inode.c was not compiled on base: unverified
    assert [w.warning.describe() for w in cmp.new_warnings] == [
        "mm/memcontrol.c:9: new one [-Wmissing-prototypes]"]
    assert [w.warning.file for w in cmp.warnings if w.change is Change.NEW_CASE] == ["fs/inode.c"]
    text = render(cmp)
    assert "new failure   recharge[sysctl=1]" in text and "pre-existing" in text
    assert "subtree_control" not in text  # unchanged cases are not in the table
    write_compare_junit(cmp, tmp_path / "junit.xml")
    cases = rundir.read_cases(tmp_path / "junit.xml")
    assert cases[("recharge[sysctl=1]", "deferred")].outcome == "fail"
    assert cases[("recharge[sysctl=1]", "mapped")].outcome == "pass"
    assert cases[("test_core", "test_cgcore_destroy")].outcome == "skip"
    assert cases[("compare.kernel-log", "WARNING in memcg_recharge_deferred_fn")].outcome == "fail"
    assert cases[("compare.kernel-log", "WARNING in css_release")].outcome == "skip"
    assert cases[("compare.build-warnings", "no new build warnings")].outcome == "fail"
    fails = [k for k, v in cases.items() if v.outcome in ("fail", "error")]
    assert len(fails) == 4  # case, signature, warning, warnings summary


def test_no_regression_is_exit_0_even_with_base_failures(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", exit_code=1, cases=BASE_CASES, build_log=BASE_LOG)
    patched = make_run(tmp_path / "patched", exit_code=1, cases=BASE_CASES, build_log=BASE_LOG)
    cmp = judge(base, patched, set())
    assert (cmp.verdict, cmp.exit_code) == ("pass", 0)
    assert cmp.count(Change.PRE_EXISTING) == 2


@pytest.mark.parametrize("stage", ["config", "build", "boot"])
def test_base_that_cannot_be_tested_is_infrastructure(tmp_path: Path, stage: str) -> None:
    stages = dict(PASSED, **{stage: "ERROR"})
    base = make_run(tmp_path / "base", exit_code=2, stages=stages, label="base")
    cmp = judge(base, None, set())
    assert (cmp.verdict, cmp.exit_code) == ("infrastructure", 2)
    assert f"{stage}: {stage} detail" in cmp.detail


def test_patched_that_does_not_build_is_exit_2(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", exit_code=0, cases={("s", "a"): "pass"})
    patched = make_run(tmp_path / "patched", exit_code=2,
                       stages=dict(PASSED, build="ERROR"), label="patched")
    cmp = judge(base, patched, set())
    assert (cmp.verdict, cmp.exit_code) == ("patched-error", 2)


def test_suite_crash_on_patched_only_is_patched_error_with_the_differences(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", exit_code=0, cases={("s", "a"): "pass"})
    patched = make_run(tmp_path / "patched", exit_code=2, stages=dict(PASSED, suites="PASS"),
                       cases={("s", "(run)"): "error", ("s", "a"): "skip"})
    cmp = judge(base, patched, set())
    # no verdict of its own: exit 2 (was "regression", exit 1), differences still listed
    assert (cmp.verdict, cmp.exit_code) == ("patched-error", 2)
    assert cmp.count(Change.NEW_FAILURE) == 1 and cmp.count(Change.GONE) == 1


def test_warnings_not_compared_when_make_was_skipped(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", exit_code=0, cases={}, build_log="", skipped_build=True)
    patched = make_run(tmp_path / "patched", exit_code=0, cases={},
                       build_log="mm/a.c:1:1: warning: x [-Wx]\n")
    cmp = judge(base, patched, {"mm/a.c"})
    assert cmp.exit_code == 0 and not cmp.warnings
    assert any("not compared" in n for n in cmp.notes)


class FakeRunner:
    """Stands in for rundir.run_child: records argv, writes a prepared run per label."""

    def __init__(self, runs: dict[str, dict[str, Any]]):
        self.runs = runs
        self.calls: list[tuple[str, list[str]]] = []

    def __call__(self, label: str, args: list[str], out: Path, log_path: Path,
                 **kw: Any) -> ChildRun:
        self.calls.append((label, list(args)))
        return make_run(out, label=label, **self.runs[label])


def test_cli_runs_base_then_patched_with_identical_options(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fake = FakeRunner({
        "base": {"exit_code": 0, "cases": {("test_core", "a"): "pass"}, "build_log": ""},
        "patched": {"exit_code": 1, "cases": {("test_core", "a"): "fail"}, "build_log": ""},
    })
    monkeypatch.setattr(rundir, "run_child", fake)
    out = tmp_path / "out"
    code = cli.main(["compare", "--suite", "test_core", "--profile", "debug", "--memory", "2G",
                     "--out", str(out)])
    cap = capsys.readouterr()
    assert code == 1, cap.err
    assert "new failure" in cap.out and "E: compare: regression (exit 1)" in cap.err
    (bl, bargs), (pl, pargs) = fake.calls
    assert (bl, pl) == ("base", "patched")
    i = bargs.index("--series")
    assert Path(bargs[i + 1]).read_text().startswith("#")  # an empty series: the base
    rest = bargs[:i] + bargs[i + 2:]
    assert rest == pargs  # the same profile, suites and guest options for both
    assert {"--suite", "test_core", "--profile", "debug", "--memory", "2G"} <= set(pargs)
    run = out / "1"
    assert (run / "junit.xml").is_file() and (run / "summary.txt").is_file()
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["results"]["exit_code"] == 1 and meta["compare"]["verdict"] == "regression"


def test_cli_base_broken_skips_patched(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fake = FakeRunner({"base": {"exit_code": 2, "stages": dict(PASSED, boot="ERROR")}})
    monkeypatch.setattr(rundir, "run_child", fake)
    code = cli.main(["compare", "--out", str(tmp_path / "out")])
    cap = capsys.readouterr()
    assert code == 2 and [c[0] for c in fake.calls] == ["base"]
    assert "INFRASTRUCTURE" in cap.out
    cases = rundir.read_cases(tmp_path / "out" / "1" / "junit.xml")
    assert cases[("compare.setup", "base")].outcome == "error"


def test_forward_args_keeps_only_what_the_user_set() -> None:
    args = cli.build_parser().parse_args(
        ["compare", "--suite", "recharge", "--suite", "test_kmem", "--tcg-multithread",
         "--jobs", "3", "--out", "/tmp/x", "--series", "s"])
    assert rundir.forward_args(args, drop=("out", "series")) == [
        "--jobs", "3", "--tcg-multithread", "--suite", "recharge", "--suite", "test_kmem"]


def test_forward_args_only_what_the_child_command_takes() -> None:
    """bench's `apply` and `build` children got `--parallel` (a run option) and exited 2."""
    args = cli.build_parser().parse_args(
        ["bench", "--parallel", "1", "--memory", "4G", "--profile", "debug", "--tree", "t",
         "--out", "/tmp/x"])
    assert rundir.forward_args(args, drop=("out",), command="apply") == ["--tree", "t"]
    assert rundir.forward_args(args, drop=("out",), command="build") == [
        "--tree", "t", "--profile", "debug"]
    assert rundir.forward_args(args, drop=("out",)) == [
        "--tree", "t", "--profile", "debug", "--memory", "4G", "--parallel", "1"]


def test_base_build_recompiles_what_the_series_touches(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Objects of C files the series changes are deleted before the base build, so both
    build logs carry those files' warnings whatever state the shared build dir was in."""
    from harness import paths

    from fakes import make_project

    project = make_project(tmp_path / "project")
    (project / "patches" / "0001-x.patch").write_text(
        "Subject: [PATCH] x\n\n---\ndiff --git a/mm/memcontrol.c b/mm/memcontrol.c\n"
        "--- a/mm/memcontrol.c\n+++ b/mm/memcontrol.c\n@@ -1 +1 @@\n-a\n+b\n")
    (project / "patches" / "series").write_text("0001-x.patch\n")
    worktree = paths.cache_root() / "worktrees" / "debian-6.12"
    (worktree / "tools/testing/selftests/cgroup").mkdir(parents=True)
    (worktree / "tools/testing/selftests/cgroup/config").write_text("CONFIG_MEMCG=y\n")
    from harness.stages.config import fragments_for, kbuild_for

    frags = fragments_for(project, worktree, "default")
    kbuild = kbuild_for(paths.cache_root(), "debian-6.12", frags, "default")
    for f in ("mm/memcontrol.o", "mm/vmscan.o", "arch/x86/boot/bzImage"):
        (kbuild / f).parent.mkdir(parents=True, exist_ok=True)
        (kbuild / f).write_text("x")
    seen: dict[str, bool] = {}

    def runner(label: str, args: list[str], out: Path, log_path: Path, **kw: Any) -> ChildRun:
        seen[label] = (kbuild / "mm/memcontrol.o").exists()
        return make_run(out, exit_code=0, cases={}, build_log="", label=label)

    monkeypatch.setattr(rundir, "run_child", runner)
    code = cli.main(["compare", "--project", str(project), "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    assert seen == {"base": False, "patched": False}
    assert (kbuild / "mm/vmscan.o").exists()  # untouched by the series: kept
    assert not (kbuild / "arch/x86/boot/bzImage").exists()  # so make really runs


def test_kernel_suites_match_across_base_and_patched_labels(tmp_path: Path) -> None:
    """The kernel's suites set the sysctl only where it exists: `test_kmem[sysctl=1]` on
    patched and `test_kmem` on base are one suite; `recharge[sysctl=0]` stays itself."""
    assert suites.suite_key("test_kmem[sysctl=1]") == "test_kmem"
    assert suites.suite_key("test_kmem") == "test_kmem"
    assert suites.suite_key("recharge[sysctl=0]") == "recharge[sysctl=0]"
    assert suites.suite_key("other[sysctl=1]") == "other[sysctl=1]"
    base = make_run(tmp_path / "base", exit_code=1,
                    cases={("test_kmem", "test_kmem_basic"): "pass",
                           ("test_kmem", "test_percpu_basic"): "fail"}, build_log=BASE_LOG)
    patched = make_run(tmp_path / "patched", exit_code=1,
                       cases={("test_kmem[sysctl=1]", "test_kmem_basic"): "fail",
                              ("test_kmem[sysctl=1]", "test_percpu_basic"): "fail"},
                       build_log=BASE_LOG)
    cmp = judge(base, patched, set())
    assert cmp.count(Change.NEW_FAILURE) == 1 and cmp.count(Change.PRE_EXISTING) == 1
    assert not [d for d in cmp.cases if d.change.name == "GONE"]


# ------------------------------------------- exit 0 only when patched was shown to pass --


def test_case_the_patched_run_lost_is_a_regression(tmp_path: Path) -> None:
    """GONE: the base ran it, the patched run did not (absent, or now skipped)."""
    base = make_run(tmp_path / "base", exit_code=0, label="base",
                    cases={("s", "a"): "pass", ("s", "b"): "pass", ("s", "c"): "pass",
                           ("s", "d"): "fail", ("s", "e"): "skip"})
    patched = make_run(tmp_path / "patched", exit_code=0, label="patched",
                       cases={("s", "a"): "pass", ("s", "c"): "skip", ("s", "d"): "skip"})
    cmp = judge(base, patched, set())
    got = {d.name: d.change for d in cmp.cases}
    assert got == {"a": Change.SAME, "b": Change.GONE, "c": Change.GONE, "d": Change.GONE,
                   "e": Change.SAME}
    assert (cmp.verdict, cmp.exit_code) == ("regression", 1)
    assert "3 gone" in cmp.detail
    write_compare_junit(cmp, tmp_path / "junit.xml")
    cases = rundir.read_cases(tmp_path / "junit.xml")
    assert [cases[("s", n)].outcome for n in "abcde"] == ["pass", "fail", "fail", "fail", "skip"]


@pytest.mark.parametrize("junit_text", [None, "<testsuites><testsuite", ""])
def test_patched_without_a_readable_junit_is_patched_error(tmp_path: Path,
                                                         junit_text: str | None) -> None:
    base = make_run(tmp_path / "base", exit_code=0, cases={("s", "a"): "pass"}, label="base")
    patched = make_run(tmp_path / "patched", exit_code=0, label="patched")
    if junit_text is not None:
        (patched.run_dir / "junit.xml").write_text(junit_text)
    cmp = judge(base, patched, set())
    assert (cmp.verdict, cmp.exit_code) == ("patched-error", 2)
    assert "junit.xml" in cmp.detail


def test_patched_exit_2_is_patched_error_even_when_its_stages_passed(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", exit_code=0, cases={("s", "a"): "pass"}, label="base")
    patched = make_run(tmp_path / "patched", exit_code=2, cases={("s", "a"): "pass"},
                       label="patched")
    cmp = judge(base, patched, set())
    assert (cmp.verdict, cmp.exit_code) == ("patched-error", 2)
    assert "exit 2" in cmp.detail


def test_base_without_a_readable_junit_is_infrastructure(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", exit_code=0, label="base")
    patched = make_run(tmp_path / "patched", exit_code=0, cases={("s", "a"): "pass"})
    cmp = judge(base, patched, set())
    assert (cmp.verdict, cmp.exit_code) == ("infrastructure", 2)


def test_compare_junit_has_one_outcome_per_testcase_and_no_bare_non_pass(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    base = make_run(tmp_path / "base", exit_code=1, cases=BASE_CASES, label="base")
    pcases = dict(BASE_CASES)
    del pcases[("test_core", "test_cgcore_destroy")]
    patched = make_run(tmp_path / "patched", exit_code=1, cases=pcases, label="patched")
    cmp = judge(base, patched, set())
    write_compare_junit(cmp, tmp_path / "junit.xml")
    root = ET.parse(tmp_path / "junit.xml").getroot()
    for tc in root.iter("testcase"):
        tags = [el.tag for el in tc if el.tag in ("failure", "error", "skipped")]
        assert len(tags) <= 1, tc.get("name")
        change = (tc.findtext("system-out") or "").split(":")[0]
        if change in ("gone", "new failure"):
            assert tags == ["failure"], tc.get("name")
        if "patched: skip" in (tc.findtext("system-out") or ""):
            assert tags == ["skipped"], tc.get("name")


def test_xfail_on_patched_where_base_passed_is_a_regression(tmp_path: Path) -> None:
    """The run's junit.xml writes a known failure as a pass with its raw status as a
    property; compare reads the raw status."""
    from harness.model import Status, SuiteRun
    from harness.parse.ktap import parse_ktap
    from harness.report.junit import write_junit
    from harness.stages.suites import SUITES, apply_known_failures

    kmem = {s.name: s for s in SUITES}["test_kmem"]
    text = "memory.current 8912896\npercpu 5750400\nnot ok 1 test_percpu_basic\n"
    result, _ = apply_known_failures(parse_ktap(text, "test_kmem"), kmem.known_failures, 2)
    assert dict(result.walk())["test_percpu_basic"].status.value == "xfail"
    out = {}
    for label, res, code in (("base", parse_ktap("ok 1 test_percpu_basic\n", "k"), 0),
                             ("patched", result, 1)):
        rd = tmp_path / label / "1"
        rd.mkdir(parents=True)
        (rd / "metadata.json").write_text(json.dumps(
            {"results": {"stages": {k: {"status": v} for k, v in PASSED.items()}}}))
        run = SuiteRun("test_kmem", Status.PASS, 1.0, text, code, None, 1, res)
        write_junit([run], rd / "junit.xml", {})
        out[label] = ChildRun(label, 0, rd, tmp_path / f"{label}.log", 1.0)
    cmp = judge(out["base"], out["patched"], set())
    diff = {d.name: d for d in cmp.cases}["test_percpu_basic"]
    assert (diff.base, diff.patched, diff.change) == ("pass", "xfail", Change.NEW_FAILURE)
    assert cmp.exit_code == 1
    # both sides xfail: pre-existing, not counted
    cmp = judge(out["patched"], out["patched"], set())
    assert {d.name: d.change for d in cmp.cases}["test_percpu_basic"] is Change.PRE_EXISTING
    assert cmp.exit_code == 0
