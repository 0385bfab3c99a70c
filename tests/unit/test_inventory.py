"""The inventory of expected cases (harness/stages/suitetable.py) and what a run makes of it.

Exit 0 must mean recharging was shown to work: on a kernel whose .config has
CONFIG_MEMCG_RECHARGE_OFFLINE_ENABLED (=y or "is not set": the option exists), every
expected case of the recharge suites and test_memcg_recharge must pass; an absent
sysctl is a failure there, not a skip.  On a kernel without the option, skips stay legal.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from harness.model import Status
from harness.stages import inventory, suites, vm
from harness.stages.ssh import CmdResult

from fakes import FakeGuest, write_exe
from test_cli import _main, cli_guest
from test_suites import _prog_dir

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------ the lists cannot drift from the C --


def _c_strings(block: str) -> list[str]:
    return re.findall(r'"([^"]+)"', block)


def test_scenarios_list_is_the_programs_cases_table() -> None:
    src = (ROOT / "selftests/recharge/scenarios/main.c").read_text()
    table = re.search(r"\}\s*cases\[\]\s*=\s*\{(.*?)\n\};", src, re.S)
    assert table, "cases[] table not found in scenarios/main.c"
    assert suites.SCENARIOS_CASES == tuple(_c_strings(table.group(1)))


def test_soak_list_is_the_programs_case_names() -> None:
    src = (ROOT / "selftests/recharge/soak.c").read_text()
    table = re.search(r"case_names\[NR_CASES\]\s*=\s*\{(.*?)\n\};", src, re.S)
    assert table, "case_names[] not found in soak.c"
    assert suites.SOAK_CASES == tuple(_c_strings(table.group(1)))
    assert set(suites.SOAK_FEATURE_CASES) <= set(suites.SOAK_CASES)


def test_mm_list_is_what_mm_run_sh_lists() -> None:
    import subprocess

    out = subprocess.run(["bash", str(ROOT / "selftests/mm-run.sh"), "-l"], check=True,
                         capture_output=True, text=True, timeout=30).stdout
    assert suites.MM_CASES == tuple(line.split()[0] for line in out.splitlines())


def test_recharge_list_is_the_programs_setups_times_scenarios() -> None:
    src = (ROOT / "selftests/recharge/test_recharge.c").read_text()
    scen = re.search(r"scenario_names\[\]\s*=\s*\{(.*?)\};", src, re.S)
    setups = re.search(r"struct setup setups\[\d+\]\s*=\s*\{(.*?)\n\};", src, re.S)
    assert scen and setups
    names = [f"{s}_{n}" for s in re.findall(r'\.name\s*=\s*"([^"]+)"', setups.group(1))
             for n in _c_strings(scen.group(1))]
    assert suites.RECHARGE_CASES == tuple(names)
    assert len(names) == 8


def test_patch_8_adds_exactly_the_feature_case_of_test_memcontrol() -> None:
    patch = next((ROOT / "patches").glob("0008-*.patch")).read_text()
    added = re.findall(r"^\+\s*T\((\w+)\),", patch, re.M)
    table = {s.name: s for s in suites.SUITES}
    assert tuple(added) == table["test_memcontrol"].feature_cases == ("test_memcg_recharge",)


def test_kernel_tables_match_the_cached_tree_when_there_is_one() -> None:
    from harness import paths

    tree = paths.cache_root() / "worktrees" / "debian-6.12"
    import pwd

    home = Path(pwd.getpwuid(os.getuid()).pw_dir)  # the isolate fixture moved $HOME
    real = home / ".cache/recharge-harness/worktrees/debian-6.12"
    tree = tree if tree.is_dir() else real
    d = tree / "tools/testing/selftests/cgroup"
    if not d.is_dir():
        pytest.skip("no 6.12 tree in the cache")
    table = {s.name: s for s in suites.SUITES}
    for name in ("test_memcontrol", "test_kmem", "test_core"):
        text = (d / f"{name}.c").read_text()
        got = tuple(re.findall(r"^\s*T\((\w+)\),", text, re.M))
        want = table[name].cases + table[name].feature_cases
        # the cached worktree may carry the series (patch 8) or not
        assert got in (want, table[name].cases), name


def test_every_inventoried_suite_lists_cases() -> None:
    table = {s.name: s for s in suites.SUITES}
    for name in ("recharge[sysctl=1]", "recharge[sysctl=0]"):
        assert table[name].cases == table[name].feature_cases == suites.RECHARGE_CASES
    for name in ("scenarios[sysctl=1]", "scenarios[sysctl=0]"):
        assert table[name].cases == table[name].feature_cases == suites.SCENARIOS_CASES
    assert "test_memcg_recharge" not in table["test_memcontrol"].cases  # only with the series


# ---------------------------------------------------------------- the .config claim --


@pytest.mark.parametrize("text,claims", [
    ("CONFIG_MEMCG=y\nCONFIG_MEMCG_RECHARGE_OFFLINE_ENABLED=y\n", True),
    ("# CONFIG_MEMCG_RECHARGE_OFFLINE_ENABLED is not set\n", True),
    ("CONFIG_MEMCG=y\n# CONFIG_MEMCG_RECHARGE_OFFLINE is not set\n", False),
    ("CONFIG_MEMCG_RECHARGE_OFFLINE_ENABLED_X=y\n", False),
    ("", False),
])
def test_claims_feature(text: str, claims: bool) -> None:
    assert inventory.claims_feature(text) is claims


# ------------------------------------------------------------------- suite level --

KTAP_ALL = ("TAP version 13\n1..8\n" + "".join(
    f"ok {i} {n}\n" for i, n in enumerate(suites.RECHARGE_CASES, 1)))


def _recharge(sysctl: int = 1) -> suites.Suite:
    return {s.name: s for s in suites.SUITES}[f"recharge[sysctl={sysctl}]"]


def test_absent_sysctl_on_a_kernel_that_claims_the_feature_is_a_failure(tmp_path: Path) -> None:
    g = FakeGuest(sysctl=None, program=CmdResult("x", 0, KTAP_ALL, "", 1.0))
    run = suites.run_suite(g, _recharge(), _prog_dir(tmp_path), tmp_path / "k", feature=True)
    assert run.status is Status.FAIL
    assert "absent" in (run.error or "") and "CONFIG_MEMCG_RECHARGE_OFFLINE_ENABLED" in run.error
    missing = [n for n, c in run.result.walk() if c.status.failed]
    assert missing == list(suites.RECHARGE_CASES)  # each expected case named


def test_absent_sysctl_without_the_feature_is_a_skip_that_says_why(tmp_path: Path) -> None:
    g = FakeGuest(sysctl=None, program=CmdResult("x", 0, KTAP_ALL, "", 1.0))
    run = suites.run_suite(g, _recharge(), _prog_dir(tmp_path), tmp_path / "k", feature=False)
    assert run.status is Status.SKIP
    assert "no CONFIG_MEMCG_RECHARGE_OFFLINE_ENABLED" in (run.error or "")


def test_skipped_expected_case_fails_when_the_feature_is_claimed(tmp_path: Path) -> None:
    text = KTAP_ALL.replace("ok 5 file_mapped_before", "ok 5 file_mapped_before # SKIP no ext4")
    for feature, want in ((True, Status.FAIL), (False, Status.PASS)):
        g = FakeGuest(sysctl="0", program=CmdResult("x", 0, text, "", 1.0))
        run = suites.run_suite(g, _recharge(), _prog_dir(tmp_path), tmp_path / "k",
                               feature=feature)
        assert run.status is want, run.error
    assert "file_mapped_before" in (run.error or "") or feature is False
    g = FakeGuest(sysctl="0", program=CmdResult("x", 0, text, "", 1.0))
    run = suites.run_suite(g, _recharge(), _prog_dir(tmp_path), tmp_path / "k", feature=True)
    case = dict(run.result.walk())["file_mapped_before"]
    assert case.status.failed and "no ext4" in case.reason


def test_missing_expected_case_fails_and_is_named(tmp_path: Path) -> None:
    # a complete, consistent stream (plan 7, 7 results) that lacks one expected case
    lines = [n for n in suites.RECHARGE_CASES if n != "shmem_read_after"]
    text = "TAP version 13\n1..7\n" + "".join(f"ok {i} {n}\n" for i, n in enumerate(lines, 1))
    g = FakeGuest(sysctl="0", program=CmdResult("x", 0, text, "", 1.0))
    run = suites.run_suite(g, _recharge(), _prog_dir(tmp_path), tmp_path / "k", feature=True)
    assert run.status is Status.FAIL and "shmem_read_after" in (run.error or "")
    # without the feature a missing case of the project's own program is still an error:
    # the program and the list in suites.py disagree
    g = FakeGuest(sysctl="0", program=CmdResult("x", 0, text, "", 1.0))
    run = suites.run_suite(g, _recharge(0), _prog_dir(tmp_path), tmp_path / "k", feature=False)
    assert run.status is not Status.PASS and "shmem_read_after" in (run.error or "")


def test_test_memcg_recharge_required_only_with_the_feature(tmp_path: Path) -> None:
    s = {x.name: x for x in suites.SUITES}["test_memcontrol"]
    base = "".join(f"ok {i} {n}\n" for i, n in enumerate(s.cases, 1))
    kdir = _prog_dir(tmp_path, "test_memcontrol")
    g = FakeGuest(sysctl=None, program=CmdResult("x", 0, base, "", 1.0))
    assert suites.run_suite(g, s, kdir, tmp_path / "k", feature=False).status is Status.PASS
    g = FakeGuest(sysctl="0", program=CmdResult("x", 0, base, "", 1.0))
    run = suites.run_suite(g, s, kdir, tmp_path / "k", feature=True)
    assert run.status is Status.FAIL and "test_memcg_recharge" in (run.error or "")
    skipped = base + "ok 15 # SKIP test_memcg_recharge\n"
    g = FakeGuest(sysctl="0", program=CmdResult("x", 0, skipped, "", 1.0))
    assert suites.run_suite(g, s, kdir, tmp_path / "k", feature=True).status is Status.FAIL
    passed = base + "ok 15 test_memcg_recharge\n"
    g = FakeGuest(sysctl="0", program=CmdResult("x", 0, passed, "", 1.0))
    assert suites.run_suite(g, s, kdir, tmp_path / "k", feature=True).status is Status.PASS


def test_kernel_suite_without_plan_that_stops_early_is_an_error(tmp_path: Path) -> None:
    s = {x.name: x for x in suites.SUITES}["test_core"]
    kdir = _prog_dir(tmp_path, "test_core")
    first3 = "".join(f"ok {i} {n}\n" for i, n in enumerate(s.cases[:3], 1))
    g = FakeGuest(sysctl=None, program=CmdResult("x", 0, first3, "", 1.0))
    run = suites.run_suite(g, s, kdir, tmp_path / "k", feature=False)
    assert run.status is Status.ERROR and s.cases[3] in (run.error or "")


# ------------------------------------------------------------------ a whole run --


def _fake_run(env, tmp_path, monkeypatch, capsys, fragment: str) -> tuple[int, str, Path]:  # type: ignore[no-untyped-def]
    tree, project, out = env
    (project / "kconfig" / "recharge.config").write_text(
        "CONFIG_MEMCG=y\nCONFIG_PAGE_COUNTER=y\n" + fragment)
    fake_vng = write_exe(tmp_path / "bin" / "vng", "#!/bin/sh\nexec sleep 300\n")
    write_exe(tmp_path / "bin" / "qemu-system-x86_64", "#!/bin/sh\necho 'QEMU emulator 7.2'\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:" + __import__("os").environ["PATH"])
    monkeypatch.setattr(vm, "vng_tool", lambda name: str(fake_vng))
    monkeypatch.setattr(vm, "PORT_CHECK_S", 0.2)
    import harness.stages.ssh

    monkeypatch.setattr(harness.stages.ssh, "Guest", cli_guest())  # its sysctl is "absent"
    (project / "selftests").mkdir(exist_ok=True)
    (project / "selftests" / "guest-setup.sh").write_text("#!/bin/sh\n")
    rc, err = _main(capsys, "run", "--tree", str(tree), "--project", str(project),
                    "--accel", "tcg", "--suite", "test_memcontrol")
    return rc, err, out / "1"


def test_run_on_a_kernel_that_claims_the_feature_but_has_no_sysctl_exits_1(  # type: ignore[no-untyped-def]
        env, tmp_path, monkeypatch, capsys) -> None:
    rc, err, run = _fake_run(env, tmp_path, monkeypatch, capsys,
                             "CONFIG_MEMCG_RECHARGE_OFFLINE_ENABLED=y\n")
    assert rc == 1, err
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["inventory"]["feature"] is True
    summary = (run / "summary.txt").read_text()
    assert "test_memcg_recharge" in summary


def test_run_on_a_kernel_without_the_option_may_skip(env, tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    rc, err, run = _fake_run(env, tmp_path, monkeypatch, capsys, "")
    assert rc == 0, err
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["inventory"]["feature"] is False
