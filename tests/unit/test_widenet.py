"""The soak and mm suites (harness.stages.widenet): selection, run options, the mm build
and config fragment, and how their outputs are judged."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.model import Status
from harness.options import forward_args
from harness.stages import build, suites, vm, widenet
from harness.stages import kconfig as klang
from harness.stages.ssh import CmdResult

from fakes import FakeGuest, git, make_fake_tree, make_project, write_exe, write_fake_vng
from test_cli import _main
from test_suites import _prog_dir

ROOT = Path(__file__).resolve().parents[2]


def _suite(name: str) -> suites.Suite:
    return {s.name: s for s in suites.SUITES}[name]


# ----------------------------------------------------------------- selection --


def test_soak_and_mm_are_in_the_table_but_not_in_the_default_selection() -> None:
    default = [s.name for s in suites.select_suites(None)]
    assert "soak" not in default and "mm" not in default
    assert default == ["recharge[sysctl=1]", "recharge[sysctl=0]", "scenarios[sysctl=1]",
                       "scenarios[sysctl=0]", "test_memcontrol", "test_kmem", "test_core"]
    assert [s.name for s in suites.select_suites(["soak"])] == ["soak"]
    assert [s.name for s in suites.select_suites(["mm", "test_core"])] == ["mm", "test_core"]
    with pytest.raises(UserError, match=r"valid: .*soak, mm"):
        suites.select_suites(["mmm"])


def test_soak_and_mm_table_entries() -> None:
    soak, mm = _suite("soak"), _suite("mm")
    assert (soak.origin, soak.program, soak.sysctl, soak.needs_sysctl) == ("own", "soak", 1, False)
    assert soak.cases == suites.SOAK_CASES
    assert soak.feature_cases == ("soak_churn", "recharge_counters")
    assert soak.timeout_s >= widenet.SOAK_DEFAULT_S + 300
    assert (mm.origin, mm.program, mm.runs_dir) == ("mm-tree", "mm-run.sh", True)
    assert mm.cases == suites.MM_CASES and mm.feature_cases == () and mm.known_failures == ()
    assert mm.timeout_s >= 3600


def test_case_selection_for_mm_passes_names_and_refuses_the_soak() -> None:
    got = suites.select_suites(["mm"], cases=("cow", "khugepaged"))
    assert [s.name for s in got] == ["mm"]
    assert got[0].args == ("cow", "khugepaged") and got[0].cases == ("cow", "khugepaged")
    with pytest.raises(UserError, match="cannot run single cases"):
        suites.select_suites(["soak"], cases=("kernel_log",))
    with pytest.raises(UserError, match="cow"):  # mm not selected: nobody has it
        suites.select_suites(None, cases=("cow",))


# ---------------------------------------------------------------- run options --


def test_soak_seconds_reach_only_the_soak() -> None:
    chosen = suites.select_suites(["soak", "scenarios"])
    got = {s.name: s for s in widenet.with_soak_seconds(chosen, 600)}
    assert got["soak"].args == ("--seconds", "600")
    assert got["soak"].timeout_s == _suite("soak").timeout_s + 600 - 120
    assert got["scenarios[sysctl=1]"] == _suite("scenarios[sysctl=1]")
    assert widenet.with_soak_seconds(chosen, None) == chosen
    # and --stress-seconds stays the scenarios'
    st = {s.name: s for s in suites.with_stress_seconds(chosen, 30)}
    assert st["soak"] == _suite("soak") and "--stress-seconds" in st["scenarios[sysctl=0]"].args


def test_soak_seconds_option_parsed_checked_and_forwarded() -> None:
    from harness import cli

    args = cli.build_parser().parse_args(["run", "--suite", "soak", "--soak-seconds", "300"])
    assert args.soak_seconds == 300
    assert forward_args(args, drop=("out",)) == ["--suite", "soak", "--soak-seconds", "300"]
    assert cli.main(["run", "--soak-seconds", "5"]) == 2  # soak.c refuses < 10 s
    opts = cli._options(args, [])
    assert opts.soak_s == 300 and opts.suites == ("soak",)


# ------------------------------------------------------------------ soak runs --

SOAK_PASS = "TAP version 13\n1..6\n" + "".join(
    f"ok {i} {n}\n" for i, n in enumerate(suites.SOAK_CASES, 1))
SOAK_NO_STRESS_NG = "TAP version 13\n1..6\n# soak: 120 s\n" + "".join(
    f"ok {i} {n} # SKIP stress-ng is not installed (Debian: apt-get install stress-ng)\n"
    for i, n in enumerate(suites.SOAK_CASES, 1))


def test_soak_runs_with_sysctl_1_and_passes(tmp_path: Path) -> None:
    g = FakeGuest(sysctl="0", program=CmdResult("x", 0, SOAK_PASS, "", 130.0))
    run = suites.run_suite(g, _suite("soak"), _prog_dir(tmp_path, "soak"), tmp_path / "k",
                           feature=True)
    assert run.status is Status.PASS and run.sysctl == 1
    cmd = [c for c in g.calls if "/soak" in c[0]][0]
    assert f"stdbuf -oL -eL {tmp_path / 'bin' / 'soak'};" in cmd[0] and cmd[1] == 900


def test_soak_without_stress_ng_fails_only_where_the_feature_is_claimed(tmp_path: Path) -> None:
    g = FakeGuest(sysctl="0", program=CmdResult("x", 4, SOAK_NO_STRESS_NG, "", 1.0))
    run = suites.run_suite(g, _suite("soak"), _prog_dir(tmp_path, "soak"), tmp_path / "k",
                           feature=True)
    assert run.status is Status.FAIL
    assert "soak_churn" in run.error and "recharge_counters" in run.error
    assert "memavailable" not in run.error
    case = dict(run.result.walk())["soak_churn"]
    assert case.status.failed and "stress-ng is not installed" in case.reason
    g = FakeGuest(sysctl=None, program=CmdResult("x", 4, SOAK_NO_STRESS_NG, "", 1.0))
    run = suites.run_suite(g, _suite("soak"), _prog_dir(tmp_path, "soak"), tmp_path / "k",
                           feature=False)
    assert run.status is Status.SKIP


def test_soak_cut_short_is_an_error(tmp_path: Path) -> None:
    text = "TAP version 13\n1..6\nok 1 soak_churn\nok 2 oom_confined\n"
    g = FakeGuest(sysctl="0", program=CmdResult("x", 0, text, "", 1.0))
    run = suites.run_suite(g, _suite("soak"), _prog_dir(tmp_path, "soak"), tmp_path / "k",
                           feature=False)
    assert run.status is Status.ERROR


# -------------------------------------------------------------------- mm runs --


def _mm_dirs(tmp_path: Path) -> tuple[Path, Path]:
    own = tmp_path / "own"
    own.mkdir()
    shutil.copy(ROOT / "selftests" / "mm-run.sh", own / "mm-run.sh")
    mm = tmp_path / "mm"
    mm.mkdir()
    return own, mm


def _mm_stream(fail: str | None = None, timeout: str | None = None) -> str:
    lines = ["TAP version 13", f"1..{len(suites.MM_CASES)}", "# mm-run: DIR, timeouts x1"]
    for i, n in enumerate(suites.MM_CASES, 1):
        lines += [f"# ----- ./{n} (timeout 300s)", "# TAP version 13", "# 1..2",
                  "# ok 1 first", "# ok 2 second", f"# {n}: exit 0 after 3s"]
        if n == fail:
            lines[-2] = "# not ok 2 second"
            lines.append(f"not ok {i} {n} # exit=1")
        elif n == timeout:
            lines[-3:] = [f"# {n}: exit 124 after 300s", f"not ok {i} {n} # TIMEOUT after 300s"]
        elif n.startswith("huge"):
            lines.append(f"ok {i} {n} # SKIP no hugetlb pages (vm.nr_hugepages=0)")
        elif n == "migration":
            lines.append(f"ok {i} {n} # SKIP not built (DIR/migration missing)")
        else:
            lines.append(f"ok {i} {n}")
    lines.append("# Totals: pass:20 fail:0 xfail:0 xpass:0 skip:7 error:0")
    return "\n".join(lines) + "\n"


def test_mm_runs_the_projects_script_on_the_trees_directory(tmp_path: Path) -> None:
    own, mm = _mm_dirs(tmp_path)
    g = FakeGuest(sysctl="0", program=CmdResult("x", 0, _mm_stream(), "", 900.0))
    run = suites.run_suite(g, _suite("mm"), mm, tmp_path / "k", wrapper_dir=own, feature=True)
    assert run.status is Status.PASS, run.error
    cmd = [c for c in g.calls if "mm-run.sh" in c[0]][0]
    assert f"stdbuf -oL -eL {own / 'mm-run.sh'} {mm};" in cmd[0]
    assert cmd[1] == 7200 and cmd[2] == suites.SCRATCH
    # --case: the names after DIR
    one = suites.select_suites(["mm"], cases=("cow",))[0]
    g = FakeGuest(sysctl="0", program=CmdResult(
        "x", 0, "TAP version 13\n1..1\nok 1 cow\n", "", 9.0))
    assert suites.run_suite(g, one, mm, tmp_path / "k", wrapper_dir=own).status is Status.PASS
    assert f"{own / 'mm-run.sh'} {mm} cow;" in [c for c in g.calls if "mm-run" in c[0]][0][0]


@pytest.mark.parametrize("fail,timeout,plan,want", [
    ("cow", None, True, Status.FAIL),
    (None, "khugepaged", False, Status.FAIL),  # killed before it printed a plan
    # killed after its own "1..2": the missing nested results are errors, as any cut
    # stream is (harness.ktap): a test that did not finish has no verdict
    (None, "khugepaged", True, Status.ERROR),
])
def test_mm_failure_or_timeout_of_one_test(tmp_path: Path, fail, timeout, plan, want) -> None:  # type: ignore[no-untyped-def]
    own, mm = _mm_dirs(tmp_path)
    text = _mm_stream(fail, timeout)
    if not plan:
        assert "# 1..2\n# khugepaged: exit 124" in text
        text = text.replace("# TAP version 13\n# 1..2\n# khugepaged: exit 124",
                            "# khugepaged: exit 124")
    g = FakeGuest(sysctl="0", program=CmdResult("x", 1, text, "", 9.0))
    run = suites.run_suite(g, _suite("mm"), mm, tmp_path / "k", wrapper_dir=own, feature=True)
    assert run.status is want, run.error
    assert (fail or timeout) in run.error


def test_mm_not_built_or_runner_missing_is_not_run(tmp_path: Path) -> None:
    own, mm = _mm_dirs(tmp_path)
    g = FakeGuest(sysctl="0")
    run = suites.run_suite(g, _suite("mm"), None, tmp_path / "k", wrapper_dir=own)
    assert run.status is Status.NOTRUN and "mm-tree selftests not available" in run.error
    run = suites.run_suite(g, _suite("mm"), mm, tmp_path / "k", wrapper_dir=None)
    assert run.status is Status.NOTRUN
    (own / "mm-run.sh").unlink()
    run = suites.run_suite(g, _suite("mm"), mm, tmp_path / "k", wrapper_dir=own)
    assert run.status is Status.NOTRUN and "mm-run.sh not built" in run.error


def test_mm_run_sh_skip_all_output_is_a_complete_skip(tmp_path: Path) -> None:
    """The real script, given no directory, skips every case at once (before it touches
    anything): that stream parses to a SKIP with every case of the inventory."""
    res = subprocess.run(["bash", str(ROOT / "selftests" / "mm-run.sh"),
                          str(tmp_path / "nonexistent")], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 4
    own, mm = _mm_dirs(tmp_path)
    g = FakeGuest(sysctl=None, program=CmdResult("x", 4, res.stdout, "", 1.0))
    run = suites.run_suite(g, _suite("mm"), mm, tmp_path / "k", wrapper_dir=own, feature=False)
    assert run.status is Status.SKIP, run.error
    assert [n for n, _ in run.result.walk()] == list(suites.MM_CASES)


# ------------------------------------------------------------ config fragment --


def test_no_suite_adds_a_fragment_the_mm_one_is_in_every_profile(tmp_path: Path) -> None:
    for sel in (None, ["soak"], ["mm"]):
        assert widenet.suite_fragments(ROOT, suites.select_suites(sel)) == []


def test_mm_fragment_sets_what_the_chosen_tests_need() -> None:
    frag = klang.Fragment.load(ROOT / "kconfig" / "mmtests.config")
    need = {"GUP_TEST", "USERFAULTFD", "PTE_MARKER_UFFD_WP", "MEM_SOFT_DIRTY", "KSM",
            "TRANSPARENT_HUGEPAGE", "SECRETMEM", "HUGETLBFS", "MIGRATION",
            "CHECKPOINT_RESTORE"}  # MEM_SOFT_DIRTY depends on it
    assert {k for k, v in frag.options.items() if v == "y"} == need
    # in every profile: --suite mm runs on the default build
    from harness.stages.profiles import BASE_FRAGMENTS

    assert "mmtests.config" in BASE_FRAGMENTS


def test_mm_binaries_come_from_the_scripts_table() -> None:
    names = widenet.mm_binaries(ROOT)
    assert names[:3] == ["cow", "gup_test", "gup_longterm"]  # gup_test once for 3 cases
    assert "khugepaged" in names and len(names) == len(set(names)) == 23


# ---------------------------------------------------------------- mm build --

MM_SELFTESTS_MAKEFILE = r"""
O ?= .
all:
ifeq ($(TARGETS),mm)
	mkdir -p $(O)/kselftest/mm
	echo "$(MAKEFLAGS)" > $(O)/kselftest/mm/makeflags
	for b in cow gup_test khugepaged; do printf '#!/bin/sh\n' > $(O)/kselftest/mm/$$b; done
	@echo "migration.c:1:10: fatal error: numa.h: No such file or directory"; exit 2
else
	mkdir -p $(O)/kselftest/cgroup
	printf '#!/bin/sh\necho "ok 1 test_memcg_subtree_control"\n' > $(O)/kselftest/cgroup/test_memcontrol
	chmod +x $(O)/kselftest/cgroup/test_memcontrol
endif
"""


def _mm_tree(tmp_path: Path) -> Path:
    tree = make_fake_tree(tmp_path / "tree")
    (tree / "tools/testing/selftests/Makefile").write_text(MM_SELFTESTS_MAKEFILE)
    git(tree, "commit", "-qam", "mm selftests")
    return tree


def test_make_mm_selftests_keeps_what_built_and_names_what_did_not(tmp_path: Path) -> None:
    tree = _mm_tree(tmp_path)
    kb = tmp_path / "kbuild"
    kb.mkdir()
    mm_dir, problems = widenet.make_mm_selftests(tree, kb, ROOT, tmp_path / "s.log", jobs=1,
                                                 cache=tmp_path / "cache")
    assert mm_dir == kb / "kselftest" / "mm"
    assert "k" in (mm_dir / "makeflags").read_text().split()[0]  # make -k
    assert len(problems) == 1 and "20 of 23 binaries not built" in problems[0]
    assert "migration" in problems[0] and "cow," not in problems[0]
    assert "TARGETS=mm" in (tmp_path / "s.log").read_text()
    # nothing built at all: no directory, and the first error
    (tree / "tools/testing/selftests/Makefile").write_text(
        "all:\n\t@echo 'x.c:1:1: error: broken'; exit 2\n")
    kb2 = tmp_path / "kbuild2"
    kb2.mkdir()
    mm_dir, problems = widenet.make_mm_selftests(tree, kb2, ROOT, tmp_path / "s2.log",
                                                 cache=tmp_path / "cache")
    assert mm_dir is None and "x.c:1:1: error: broken" in problems[0]


def test_add_mm_selftests_extends_the_result(tmp_path: Path) -> None:
    tree = _mm_tree(tmp_path)
    kb = tmp_path / "kbuild"
    kb.mkdir()
    base = build.SelftestsResult(kb / "c", kb / "o", kb / "usr/include", ("earlier",))
    assert base.mm_dir is None
    got = widenet.add_mm_selftests(base, tree, kb, ROOT, tmp_path / "s.log", jobs=1,
                                   cache=tmp_path / "cache")
    assert got.mm_dir == kb / "kselftest" / "mm" and got.problems[0] == "earlier"
    assert got.cgroup_dir == base.cgroup_dir and len(got.problems) == 2


# -------------------------------------------------------------- a whole run --


def _run(env, tmp_path, monkeypatch, capsys, *suite_args: str):  # type: ignore[no-untyped-def]
    tree, project, out = env
    (tree / "tools/testing/selftests/Makefile").write_text(MM_SELFTESTS_MAKEFILE)
    git(tree, "commit", "-qam", "mm selftests")
    (project / "kconfig" / "mmtests.config").write_text("CONFIG_BLOCK=y\n")
    sdir = project / "selftests"
    sdir.mkdir()
    (sdir / "guest-setup.sh").write_text("#!/bin/sh\n")
    shutil.copy(ROOT / "selftests" / "mm-run.sh", sdir / "mm-run.sh")
    (sdir / "Makefile").write_text("all:\n\tmkdir -p $(O) && cp mm-run.sh $(O)/\n")
    fake_vng = write_fake_vng(tmp_path / "bin")
    write_exe(tmp_path / "bin" / "qemu-system-x86_64", "#!/bin/sh\necho 'QEMU emulator 7.2'\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:" + __import__("os").environ["PATH"])
    monkeypatch.setattr(vm, "vng_tool", lambda name: str(fake_vng))
    monkeypatch.setattr(vm, "PORT_CHECK_S", 0.2)
    import harness.stages.ssh

    monkeypatch.setattr(harness.stages.ssh, "Guest", FakeGuest.factory(
        sysctl=None, ncpu=None, programs={
            "mm-run.sh": CmdResult("x", 0, _mm_stream(), "", 5.0),
            "test_memcontrol": CmdResult("x", 0, "TAP version 13\n1..1\nok 1 a\n", "", 0.5)}))
    rc, err = _main(capsys, "run", "--tree", str(tree), "--project", str(project),
                    "--accel", "tcg", *suite_args)
    runs = sorted((p for p in out.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    return rc, err, runs[-1]


def test_run_with_suite_mm_builds_and_runs_the_mm_selftests(  # type: ignore[no-untyped-def]
        env, tmp_path, monkeypatch, capsys) -> None:
    rc, err, run = _run(env, tmp_path, monkeypatch, capsys, "--suite", "mm")
    assert rc == 0, err
    assert any(p.name.endswith("mmtests.config") for p in (run / "fragments").iterdir())
    meta = json.loads((run / "metadata.json").read_text())
    assert any(f.endswith("mmtests.config") for f in meta["config"]["fragments"])
    assert "TARGETS=mm" in (run / "selftests.log").read_text()
    assert (run / "guest" / "mm-tree" / "cow").is_file()
    assert meta["results"]["suites"]["mm"]["status"] == "PASS"
    assert "20 of 23 binaries not built" in meta["results"]["stages"]["selftests"]["detail"]
    mm_kbuild = meta["config"]["kbuild"]
    # the default selection: the same fragments and build directory, no mm selftests
    rc, err, run2 = _run_default(env, tmp_path, monkeypatch, capsys)
    meta2 = json.loads((run2 / "metadata.json").read_text())
    assert any(f.endswith("mmtests.config") for f in meta2["config"]["fragments"])
    log2 = run2 / "selftests.log"
    assert not log2.exists() or "TARGETS=mm" not in log2.read_text()
    assert meta2["config"]["kbuild"] == mm_kbuild
    assert not (run2 / "guest" / "mm-tree").exists()


def _run_default(env, tmp_path, monkeypatch, capsys):  # type: ignore[no-untyped-def]
    tree, project, out = env
    rc, err = _main(capsys, "run", "--tree", str(tree), "--project", str(project),
                    "--accel", "tcg", "--suite", "test_memcontrol")
    runs = sorted((p for p in out.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    return rc, err, runs[-1]


def test_compare_finds_the_mm_build_directory(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """compare's base build clean-up looks where ``run --suite mm`` builds: the default
    build directory."""
    from harness import paths
    from harness.model import Options
    from harness.modes.compare.runner import pipeline_kbuild
    from harness.stages import config as configmod

    project = make_project(tmp_path / "project")
    (project / "kconfig" / "mmtests.config").write_text("CONFIG_BLOCK=y\n")
    worktree = paths.cache_root() / "worktrees" / "debian-6.12"
    worktree.mkdir(parents=True)
    opts = Options(project=project, cache=paths.cache_root(), suites=("mm",))
    frags = configmod.fragments_for(project, worktree, opts.profile)
    assert frags[-2].name == "mmtests.config"  # in every profile, before the profile's own
    kb = configmod.kbuild_for(opts.cache, "debian-6.12", frags, opts.profile)
    kb.mkdir(parents=True)
    assert pipeline_kbuild(opts) == kb
    assert pipeline_kbuild(Options(project=project, cache=paths.cache_root())) == kb
