"""JUnit mapping: SuiteRun + KTAP tree + kernel-log findings -> junit.xml."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from junitparser import JUnitXml

from harness.model import Status, SuiteRun
from harness.parse.ktap import parse_ktap
from harness.parse.logscan import BETWEEN, BOOT, KERNEL_SUITE, Finding
from harness.report.junit import build_junit, suite_label, write_junit

DATA = Path(__file__).resolve().parent.parent / "data" / "ktap"
PROPS = {"kernel.sha": "0123abcd", "accelerator": "tcg", "config.hash": "feedbeef"}


def _run(
    name: str,
    text: str,
    status: Status,
    exit_code: int | None = 0,
    error: str | None = None,
    sysctl: int | None = 1,
) -> SuiteRun:
    return SuiteRun(
        name=name,
        status=status,
        duration_s=12.5,
        raw_output=text,
        exit_code=exit_code,
        error=error,
        sysctl=sysctl,
        result=parse_ktap(text, name) if text else None,
    )


def _finding(kind: str = "warning", fatal: bool = False, title: str = "WARNING in foo") -> Finding:
    return Finding(kind=kind, title=title, signature=f"{kind}: sig", line_no=7, excerpt="[ 1.0] x", fatal=fatal)


def _write(tmp_path: Path, runs: list[SuiteRun], findings=None) -> ET.Element:  # type: ignore[no-untyped-def]
    out = tmp_path / "junit.xml"
    write_junit(runs, out, dict(PROPS), findings)
    assert not (tmp_path / "junit.xml.tmp").exists()
    return ET.parse(out).getroot()


def _cases(root: ET.Element, suite: str) -> dict[str, ET.Element]:
    (ts,) = [s for s in root.iter("testsuite") if s.get("name") == suite]
    return {c.get("name", ""): c for c in ts.iter("testcase")}


def _result(case: ET.Element) -> str:
    kinds = [el.tag for el in case if el.tag in ("failure", "error", "skipped")]
    return kinds[0] if kinds else "pass"


def test_suite_label() -> None:
    assert suite_label(_run("recharge", "", Status.PASS, sysctl=1)) == "recharge[sysctl=1]"
    assert suite_label(_run("recharge", "", Status.PASS, sysctl=None)) == "recharge"
    assert suite_label(_run("x[sysctl=0]", "", Status.PASS, sysctl=0)) == "x[sysctl=0]"


def test_memcontrol_mapping(tmp_path: Path) -> None:
    text = (DATA / "memcontrol-6.12-noplan.tap").read_text()
    root = _write(tmp_path, [_run("memcontrol", text, Status.FAIL, exit_code=1)])
    (ts,) = root.iter("testsuite")
    assert ts.get("name") == "memcontrol[sysctl=1]"
    assert (ts.get("tests"), ts.get("failures"), ts.get("errors"), ts.get("skipped")) == ("14", "1", "0", "1")
    assert ts.get("time") == "12.5"
    props = {p.get("name"): p.get("value") for p in ts.iter("property")}
    assert props["kernel.sha"] == "0123abcd" and props["accelerator"] == "tcg"
    assert props["suite.status"] == "fail" and props["suite.exit_code"] == "1" and props["suite.sysctl"] == "1"
    cases = _cases(root, "memcontrol[sysctl=1]")
    assert _result(cases["test_memcg_low"]) == "failure"
    assert cases["test_memcg_low"].findtext("system-out") == "memory.low prevents from allocating anon memory"
    assert _result(cases["test_memcg_swap_max_peak"]) == "skipped"
    assert _result(cases["test_memcg_min"]) == "pass"
    assert all(c.get("classname") == "memcontrol[sysctl=1]" for c in cases.values())
    assert "(run)" not in cases and "kernel-log" not in cases  # no findings given


def test_nested_names_and_directives(tmp_path: Path) -> None:
    runner = (DATA / "runner-cgroup.tap").read_text()
    directives = (DATA / "directives.tap").read_text()
    root = _write(
        tmp_path,
        [
            _run("selftests-cgroup", runner, Status.FAIL, exit_code=1, sysctl=None),
            _run("directives", directives, Status.FAIL, exit_code=1, sysctl=None),
        ],
    )
    cases = _cases(root, "selftests-cgroup")
    assert _result(cases["selftests: cgroup: test_kmem.test_kmem_memcg_deletion"]) == "failure"
    assert _result(cases["selftests: cgroup: test_kmem"]) == "failure"
    timeout = cases["selftests: cgroup: test_memcontrol"].find("failure")
    assert timeout is not None and timeout.get("type") == "timeout"
    assert _result(cases["selftests: cgroup: test_zswap"]) == "skipped"
    d = _cases(root, "directives")
    assert _result(d["known_broken_case"]) == "pass"
    props = {p.get("name"): p.get("value") for p in d["known_broken_case"].iter("property")}
    assert props["ktap.status"] == "xfail"
    assert d["unexpected"].find("failure").get("type") == "xpass"  # type: ignore[union-attr]
    assert d["slow_case"].find("failure").get("type") == "timeout"  # type: ignore[union-attr]
    assert _result(d["cannot_open_file"]) == "error"
    assert _result(d["todo_case"]) == "pass"  # not ok # TODO = expected failure


def test_run_error_gives_error_case_and_not_run(tmp_path: Path) -> None:
    text = "TAP version 13\n1..3\nok 1 first\n"
    root = _write(tmp_path, [_run("recharge", text, Status.ERROR, exit_code=None, error="timed out after 300 s")])
    cases = _cases(root, "recharge[sysctl=1]")
    run = cases["(run)"]
    assert run.find("error").get("message") == "timed out after 300 s"  # type: ignore[union-attr]
    assert "ok 1 first" in (run.findtext("system-out") or "")
    assert _result(cases["first"]) == "pass"
    assert [_result(cases[n]) for n in ("missing_2", "missing_3")] == ["skipped", "skipped"]
    assert cases["missing_2"].find("skipped").get("message") == "not run: timed out after 300 s"  # type: ignore[union-attr]
    assert "(ktap)" not in cases


def test_status_not_told_by_cases(tmp_path: Path) -> None:
    runs = [
        _run("crash", "ok 1 a\n", Status.ERROR, exit_code=139, sysctl=None),
        _run("nooutput", "", Status.ERROR, exit_code=1, sysctl=None),
        _run("skipped", "1..0 # SKIP no memcg\n", Status.SKIP, exit_code=4, sysctl=None),
        _run("notrun", "", Status.NOTRUN, exit_code=None, sysctl=None),
        _run("planbad", "1..3\nok 1 a\n", Status.ERROR, exit_code=0, sysctl=None),
    ]
    root = _write(tmp_path, runs)
    assert _result(_cases(root, "crash")["(run)"]) == "error"
    assert _result(_cases(root, "nooutput")["(run)"]) == "error"
    skipped = _cases(root, "skipped")["(run)"].find("skipped")
    assert skipped is not None and skipped.get("message") == "no memcg"
    assert _result(_cases(root, "notrun")["(run)"]) == "skipped"
    planbad = _cases(root, "planbad")
    assert planbad["(ktap)"].find("error").get("message") == "plan said 3, saw 1"  # type: ignore[union-attr]
    assert _result(planbad["missing_2"]) == "error"


def test_findings_attached(tmp_path: Path) -> None:
    text = (DATA / "memcontrol-6.12-noplan.tap").read_text()
    run = _run("memcontrol", text, Status.FAIL, exit_code=1)
    findings = {
        ("memcontrol[sysctl=1]", "test_memcg_min"): [_finding()],
        ("memcontrol[sysctl=1]", ""): [_finding("oom", title="oom-killer invoked")],
        ("memcontrol", "no_such_case"): [_finding("lockdep", title="lockdep thing")],
        BOOT: [_finding("bug", title="BUG: at boot")],
        ("other[sysctl=0]", "x"): [_finding("panic", fatal=True, title="Kernel panic")],
    }
    root = _write(tmp_path, [run], findings)
    cases = _cases(root, "memcontrol[sysctl=1]")
    fail = cases["test_memcg_min"].find("failure")
    assert fail is not None and fail.get("type") == "kernel-log.warning"
    assert "signature: warning: sig" in (fail.text or "")
    log = cases["kernel-log"]
    assert log.find("failure").get("message") == "kernel lockdep during no_such_case: lockdep thing"  # type: ignore[union-attr]
    assert "oom-killer invoked" in (log.findtext("system-err") or "")  # informational only
    kernel = _cases(root, KERNEL_SUITE)
    assert list(kernel) == ["(boot)", "(between)", "other[sysctl=0].x"]
    assert _result(kernel["(boot)"]) == "failure" and _result(kernel["(between)"]) == "pass"
    assert _result(kernel["other[sysctl=0].x"]) == "error"  # fatal -> error


def test_outputs_after_results(tmp_path: Path) -> None:
    run = _run("m", "# diag\nnot ok 1 a\n", Status.FAIL, exit_code=1, sysctl=None)
    root = _write(tmp_path, [run], {("m", "a"): [_finding()]})
    tags = [el.tag for el in _cases(root, "m")["a"]]
    assert tags == ["failure", "system-out"]  # one outcome: the case's, plus the finding


def test_empty_findings_still_write_kernel_log_cases(tmp_path: Path) -> None:
    run = _run("m", "ok 1 a\n", Status.PASS, sysctl=None)
    root = _write(tmp_path, [run], {})
    assert _result(_cases(root, "m")["kernel-log"]) == "pass"
    assert set(_cases(root, KERNEL_SUITE)) == {"(boot)", "(between)"}
    assert root.get("failures") == "0" and root.get("errors") == "0"
    assert BETWEEN[0] == KERNEL_SUITE


def test_readable_by_junitparser(tmp_path: Path) -> None:
    text = (DATA / "runner-cgroup.tap").read_text()
    out = tmp_path / "junit.xml"
    write_junit([_run("c", text, Status.FAIL, exit_code=1)], out, {})
    xml = JUnitXml.fromfile(str(out))
    (suite,) = list(xml)
    assert suite.name == "c[sysctl=1]"
    names = [c.name for c in suite]
    assert names[0] == "selftests: cgroup: test_core"
    assert "selftests: cgroup: test_core.test_cgcore_populated" in names
    assert build_junit([], {}).tests == 0


def test_error_text_is_only_a_reason_unless_status_is_error(tmp_path: Path) -> None:
    # harness/stages/suites.py puts judge()'s reason into SuiteRun.error for every status
    failed = _run("f", "ok 1 a\nnot ok 2 b\n", Status.FAIL, exit_code=1, error="1 failed: b", sysctl=None)
    absent = SuiteRun("s", Status.SKIP, 0.0, "", None, "sysctl vm.recharge_offline_memcgs absent", None, None)
    unbuilt = SuiteRun("n", Status.NOTRUN, 0.0, "", None, "test_recharge not built", None, None)
    root = _write(tmp_path, [failed, absent, unbuilt])
    f = _cases(root, "f")
    assert "(run)" not in f and _result(f["b"]) == "failure"
    skipped = _cases(root, "s")["(run)"].find("skipped")
    assert skipped is not None and skipped.get("message") == "sysctl vm.recharge_offline_memcgs absent"
    err = _cases(root, "n")["(run)"].find("error")
    assert err is not None and err.get("message") == "test_recharge not built"


def _outcomes(root: ET.Element) -> dict[tuple[str, str], list[str]]:
    return {(ts.get("name", ""), c.get("name", "")):
            [el.tag for el in c if el.tag in ("failure", "error", "skipped")]
            for ts in root.iter("testsuite") for c in ts.iter("testcase")}


def test_every_testcase_has_exactly_one_outcome(tmp_path: Path) -> None:
    """A skipped or failed case with kernel-log findings still has one result element:
    the worst (error > failure > skipped), carrying every message."""
    run = _run("m", "not ok 1 a\nok 2 b # SKIP no swap\nok 3 c\n", Status.FAIL, exit_code=1,
               sysctl=None)
    findings = {("m", "a"): [_finding(), _finding("bug", title="BUG: x")],
                ("m", "b"): [_finding()], ("m", "c"): [_finding("panic", fatal=True)]}
    root = _write(tmp_path, [run], findings)
    got = _outcomes(root)
    assert all(len(v) <= 1 for v in got.values()), got
    assert got[("m", "a")] == ["failure"] and got[("m", "b")] == ["failure"]
    assert got[("m", "c")] == ["error"]
    a = _cases(root, "m")["a"].find("failure")
    assert a is not None and "BUG: x" in a.get("message", "") and \
        "WARNING in foo" in a.get("message", "") and "signature: bug: sig" in (a.text or "")
