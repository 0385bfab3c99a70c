"""cli + pipeline: bad input -> one line and exit 2; whole runs with fakes; exit codes."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from harness import cli, verdict
from harness.model import StageResult, Status, SuiteRun
from harness.modes import run as pipeline
from harness.stages import vm

from fakes import (
    DEFAULT_KTAP,
    FakeGuest,
    git,
    make_patch,
    run_programs,
    snapshot,
    write_exe,
    write_fake_vng,
)


def cli_guest(code: int = 0, ktap: str = DEFAULT_KTAP):  # type: ignore[no-untyped-def]
    """The guest of a whole fake run: no sysctl, test_memcontrol prints ``ktap``."""
    return FakeGuest.factory(sysctl=None, ncpu=None, programs=run_programs(code, ktap))


def _main(capsys, *argv: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    code = cli.main(list(argv))
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize("argv,msg", [
    (["run", "--tree", "/nonexistent/tree"], "E: --tree /nonexistent/tree: no such directory"),
    (["run", "--memory", "lots"], "E: --memory 'lots': expected a size like 3G or 1536M"),
    (["run", "--suite", "bogus"], "E: --suite 'bogus': unknown suite"),
    (["apply", "--base", "v1"], "E: --base needs --tree"),
    (["run", "--project", "/nonexistent/p"], "E: --project /nonexistent/p: no such directory"),
    (["test", "--kernel-dir", "/nonexistent/k"], "E: --kernel-dir /nonexistent/k: no such directory"),
    (["test", "--kernel-dir", ".", "--series", "/etc/hostname"],
     "E: --kernel-dir tests a kernel already built"),
])
def test_bad_input_one_line_exit_2(env, capsys, argv: list[str], msg: str) -> None:  # type: ignore[no-untyped-def]
    code, err = _main(capsys, *argv)
    assert code == 2
    assert msg in err
    assert [l for l in err.splitlines() if l.startswith("E: ")][0].startswith(msg)


def test_usage_error_is_exit_2(capsys) -> None:  # type: ignore[no-untyped-def]
    assert cli.main(["run", "--cpus", "zero"]) == 2


def test_not_a_git_tree(env, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "plain").mkdir()
    code, err = _main(capsys, "source", "--tree", str(tmp_path / "plain"))
    assert code == 2 and "not a git work tree" in err


def test_conflicting_patch_exit_2_names_it_tree_untouched(env, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tree, project, out = env
    git(tree, "checkout", "-q", "-b", "other")
    (tree / "mm" / "memcontrol.c").write_text("x\ny\nz\n")
    git(tree, "commit", "-q", "-am", "other")
    make_patch(tree, "mm/memcontrol.c", "x\nCHANGED\nz\n", "mm: bad",
               project / "patches" / "0001-bad.patch")
    git(tree, "checkout", "-q", "main")
    (project / "patches" / "series").write_text("0001-bad.patch\n")
    (tree / "mm" / "memcontrol.c").write_text("dirty, uncommitted\n")
    before = snapshot(tree)
    code, err = _main(capsys, "apply", "--tree", str(tree), "--project", str(project))
    assert code == 2
    assert "patch 1/1 0001-bad.patch does not apply" in err and "mm/memcontrol.c" in err
    assert snapshot(tree) == before
    meta = json.loads((out / "1" / "metadata.json").read_text())
    assert meta["results"]["stages"]["apply"]["status"] == "ERROR"
    assert meta["results"]["exit_code"] == 2


def test_unmet_dependency_reported_before_compiling(env, capsys) -> None:  # type: ignore[no-untyped-def]
    tree, project, out = env
    (project / "kconfig" / "testenv.config").write_text("# CONFIG_BLOCK is not set\n")
    code, err = _main(capsys, "build", "--tree", str(tree), "--project", str(project))
    assert code == 2
    assert "CONFIG_MEMCG=y (from recharge.config)" in err and "unmet dependency" in err
    meta = json.loads((out / "1" / "metadata.json").read_text())
    assert meta["results"]["stages"]["build"]["status"] == "NOTRUN"
    assert not (out / "1" / "build.log").exists()


def test_build_then_rebuild_is_skipped(env, capsys) -> None:  # type: ignore[no-untyped-def]
    tree, project, out = env
    code, err = _main(capsys, "build", "--tree", str(tree), "--project", str(project))
    assert code == 0, err
    meta = json.loads((out / "1" / "metadata.json").read_text())
    st = meta["results"]["stages"]
    assert [st[s]["status"] for s in ("source", "apply", "config", "build")] == ["PASS"] * 4
    assert meta["build_info"]["skipped"] is False
    assert (out / "1" / "config").is_file() and (out / "1" / "kernel" / "bzImage").is_file()
    assert (out / "latest").resolve() == (out / "1").resolve()
    code, err = _main(capsys, "build", "--tree", str(tree), "--project", str(project))
    assert code == 0
    meta2 = json.loads((out / "2" / "metadata.json").read_text())
    assert meta2["build_info"]["skipped"] is True
    assert "up to date, make skipped" in meta2["results"]["stages"]["build"]["detail"]


@pytest.mark.parametrize("code,ktap,want", [
    (0, "TAP version 13\n1..1\nok 1 subtree_control\n", 0),
    (1, "TAP version 13\n1..1\nnot ok 1 subtree_control\n", 1),
])
def test_full_run_with_fakes(env, capsys, tmp_path: Path, monkeypatch, code: int, ktap: str,  # type: ignore[no-untyped-def]
                             want: int) -> None:
    tree, project, out = env
    fake_vng = write_fake_vng(tmp_path / "bin")
    write_exe(tmp_path / "bin" / "qemu-system-x86_64", "#!/bin/sh\necho 'QEMU emulator 7.2'\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:" + __import__("os").environ["PATH"])
    monkeypatch.setattr(vm, "vng_tool", lambda name: str(fake_vng))
    monkeypatch.setattr(vm, "PORT_CHECK_S", 0.2)
    import harness.stages.ssh

    monkeypatch.setattr(harness.stages.ssh, "Guest", cli_guest(code, ktap))
    (project / "selftests").mkdir()
    (project / "selftests" / "guest-setup.sh").write_text("#!/bin/sh\n")
    rc, err = _main(capsys, "run", "--tree", str(tree), "--project", str(project),
                    "--accel", "tcg", "--suite", "test_memcontrol")
    assert rc == want, err
    run = out / "1"
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["results"]["exit_code"] == want
    assert meta["vm"]["accel"] == "tcg" and meta["vm"]["accel_reason"] == "--accel tcg"
    assert meta["guest"]["scratch"] == "/mnt/rhscratch"
    assert (run / "ktap" / "test_memcontrol.tap").read_text() == ktap
    assert (run / "dmesg.log").read_text().startswith("[    0.0] Linux")
    assert (run / "junit.xml").is_file() and "subtree_control" in (run / "junit.xml").read_text()
    assert (run / "summary.txt").is_file()
    assert not (run / "vm" / "rhscratch.ext4").exists()  # scratch images removed
    assert not (run / "vm" / "home").exists()  # the per-run private key is gone
    assert meta["results"]["suites"]["test_memcontrol"]["status"] == ("PASS" if want == 0 else
                                                                      "FAIL")


def test_make_run_dir_is_race_free(tmp_path: Path) -> None:
    dirs: list[Path] = []
    lock = threading.Lock()

    def mk() -> None:
        d = pipeline.make_run_dir(tmp_path / "out")
        with lock:
            dirs.append(d)

    threads = [threading.Thread(target=mk) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({d.name for d in dirs}) == 8
    assert sorted(int(d.name) for d in dirs) == list(range(1, 9))


def _sr(status: Status) -> SuiteRun:
    return SuiteRun("s", status, 0.0, "", 0, None, None, None)


def _st(status: Status) -> StageResult:
    return StageResult("x", status, 0.0, None, "")


@pytest.mark.parametrize("stages,runs,code", [
    ([Status.PASS], [Status.PASS, Status.SKIP], 0),
    ([Status.PASS], [Status.PASS, Status.FAIL], 1),
    ([Status.PASS], [Status.FAIL, Status.ERROR], 2),
    ([Status.PASS], [Status.NOTRUN], 2),
    ([Status.ERROR], [], 2),
    ([Status.PASS, Status.NOTRUN], [], 0),
])
def test_exit_code_contract(stages, runs, code) -> None:  # type: ignore[no-untyped-def]
    assert verdict.exit_code([_st(s) for s in stages], [_sr(r) for r in runs],
                             suites_expected=bool(runs)) == code
