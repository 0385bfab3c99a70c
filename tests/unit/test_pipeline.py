"""The pipeline in process, on the fake kernel tree: stages in order, recorded in the run
record, the stages after a failure marked NOTRUN, one verdict; the guest injected."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import paths, record
from harness.model import Options
from harness.modes.run import STAGES, Pipeline
from harness.stages import vm

from fakes import FakeGuest, git, run_programs, write_exe, write_fake_vng


def _opts(env, command: str, **kw) -> Options:  # type: ignore[no-untyped-def]
    tree, project, out = env
    return Options(command=command, tree=tree, out=out, project=project,
                   cache=paths.cache_root(), argv=(command,), **kw)


def test_build_runs_the_stages_up_to_selftests_and_records_them(env) -> None:  # type: ignore[no-untyped-def]
    p = Pipeline(_opts(env, "build"))
    assert p.run() == 0
    rec = record.load(p.run_dir)
    assert list(rec.stages) == ["source", "apply", "config", "build", "selftests"]
    assert all(s.status == "PASS" for s in rec.stages.values())
    assert (rec.exit_code, rec.status) == (0, "pass")
    assert rec.schema_version == record.SCHEMA_VERSION
    assert (p.run_dir / "kernel" / "bzImage").is_file()


def test_a_failing_stage_stops_the_run_and_the_rest_is_notrun(env) -> None:  # type: ignore[no-untyped-def]
    tree, project, _ = env
    (tree / "FAIL").write_text("")  # the fake Makefile's bzImage then fails
    git(tree, "add", "FAIL")
    git(tree, "commit", "-q", "-m", "break the build")
    p = Pipeline(_opts(env, "build"))
    assert p.run() == 2
    rec = record.load(p.run_dir)
    assert rec.stages["build"].status == "ERROR" and "nope" in rec.stages["build"].detail
    assert rec.stages["selftests"].status == "NOTRUN"
    assert rec.failed_stage() is not None and rec.failed_stage()[0] == "build"  # type: ignore[index]


@pytest.mark.parametrize("command", ["build", "boot"])
def test_an_interrupt_between_stages_is_no_verdict(env, monkeypatch, command: str) -> None:  # type: ignore[no-untyped-def]
    """Ctrl-C while the run waits for the worktree lock (another run holds it), before
    any stage after source started: nothing was built or booted, so no verdict (2),
    never PASS."""
    import contextlib

    from harness.stages import config as configmod

    @contextlib.contextmanager
    def interrupted_lock(cache, name):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt
        yield  # pragma: no cover

    monkeypatch.setattr(configmod, "worktree_lock", interrupted_lock)
    p = Pipeline(_opts(env, command))
    assert p.run() == 2
    rec = record.load(p.run_dir)
    assert (rec.exit_code, rec.status) == (2, "no verdict")
    assert rec.stages["apply"].status == "NOTRUN"


@pytest.mark.parametrize("code,want", [(0, 0), (1, 1)])
def test_run_with_an_injected_guest(env, tmp_path: Path, monkeypatch, capsys, code: int,  # type: ignore[no-untyped-def]
                                    want: int) -> None:
    tree, project, out = env
    fake_vng = write_fake_vng(tmp_path / "bin")
    write_exe(tmp_path / "bin" / "qemu-system-x86_64", "#!/bin/sh\necho 'QEMU emulator 7.2'\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:" + __import__("os").environ["PATH"])
    monkeypatch.setattr(vm, "vng_tool", lambda name: str(fake_vng))
    monkeypatch.setattr(vm, "PORT_CHECK_S", 0.2)
    (project / "selftests").mkdir()
    (project / "selftests" / "guest-setup.sh").write_text("#!/bin/sh\n")
    ktap = "TAP version 13\n1..1\n" + ("ok" if code == 0 else "not ok") + " 1 subtree_control\n"
    guest = FakeGuest.factory(sysctl=None, ncpu=None, programs=run_programs(code, ktap))
    p = Pipeline(_opts(env, "run", accel="tcg", suites=("test_memcontrol",)),
                 guest_factory=guest)
    assert p.run() == want
    rec = record.load(p.run_dir)
    assert list(rec.stages) == list(STAGES)
    assert rec.exit_code == want
    assert rec.suites["test_memcontrol"]["status"] == ("PASS" if want == 0 else "FAIL")
    summary = (p.run_dir / "summary.txt").read_text()
    assert summary.rstrip().endswith(f"(exit {want})")  # the summary and the exit code agree
    assert "verdict:" in capsys.readouterr().out


def test_test_kernel_dir_boots_another_runs_kernel_without_source_or_build(  # type: ignore[no-untyped-def]
        env, tmp_path: Path, monkeypatch) -> None:
    import json

    from harness.cli import build_parser

    tree, project, out = env
    built = Pipeline(_opts(env, "build"))
    assert built.run() == 0
    artifact = tmp_path / "artifact"  # e.g. a CI job's download: the run directory
    __import__("shutil").copytree(built.run_dir, artifact)
    (artifact / "guest" / "cgroup").mkdir(parents=True, exist_ok=True)
    (artifact / "guest" / "cgroup" / "test_memcontrol").write_text("#!/bin/sh\n")
    # the source and cache are gone: only the artifact is used
    __import__("shutil").rmtree(tree)
    fake_vng = write_fake_vng(tmp_path / "bin")
    write_exe(tmp_path / "bin" / "qemu-system-x86_64", "#!/bin/sh\necho 'QEMU emulator 7.2'\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:" + __import__("os").environ["PATH"])
    monkeypatch.setattr(vm, "vng_tool", lambda name: str(fake_vng))
    monkeypatch.setattr(vm, "PORT_CHECK_S", 0.2)
    (project / "selftests").mkdir()
    (project / "selftests" / "guest-setup.sh").write_text("#!/bin/sh\n")
    guest = FakeGuest.factory(sysctl=None, ncpu=None, programs=run_programs(0))
    opts = Options(command="test", out=out, project=project, cache=paths.cache_root(),
                   argv=("test",), accel="tcg", suites=("test_memcontrol",),
                   kernel_dir=artifact)
    p = Pipeline(opts, guest_factory=guest)
    assert p.run() == 0
    rec = record.load(p.run_dir)
    assert list(rec.stages) == ["build", "boot", "guest-setup", "suites", "report"]
    assert "using the kernel of" in rec.stages["build"].detail
    assert (p.run_dir / "kernel" / "bzImage").read_bytes() == \
        (artifact / "kernel" / "bzImage").read_bytes()
    assert (p.run_dir / "guest" / "cgroup" / "test_memcontrol").is_file()
    meta = json.loads((p.run_dir / "metadata.json").read_text())
    assert meta["source"]["kernel_dir"] == str(artifact)
    assert "first_command_s" in meta["vm"] and "guest_ready_s" in meta["vm"]
    assert meta["source"]["head_commit"] == json.loads(
        (artifact / "metadata.json").read_text())["source"]["head_commit"]
    args = build_parser().parse_args(["test", "--kernel-dir", str(artifact), "--shard", "1/2"])
    assert args.kernel_dir == artifact


def test_kernel_dir_must_hold_a_kernel(tmp_path: Path) -> None:
    from harness.errors import UserError
    from harness.stages.kerneldir import kernel_dir_files

    with pytest.raises(UserError, match="no such directory"):
        kernel_dir_files(tmp_path / "nope")
    with pytest.raises(UserError, match="no kernel/bzImage"):
        kernel_dir_files(tmp_path)
    (tmp_path / "bzImage").write_bytes(b"k")
    assert kernel_dir_files(tmp_path) == (tmp_path / "bzImage", None)
