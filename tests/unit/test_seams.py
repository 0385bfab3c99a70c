"""The seams between modes and stages: the boot() context manager always stops its guest,
configure() owns fragments and build directories, every mode leaves one run record."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from harness import paths, record
from harness.errors import Interrupted, UserError
from harness.model import Options
from harness.report.mode import mode_run
from harness.stages import boot as bootmod
from harness.stages import config as configmod
from harness.stages import vm

from fakes import FakeGuest, make_project, write_exe, write_fake_vng


@pytest.fixture
def fake_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake vng (sleeps until killed) and a fake QEMU on PATH; returns a bzImage path."""
    fake_vng = write_fake_vng(tmp_path / "bin")
    write_exe(tmp_path / "bin" / "qemu-system-x86_64", "#!/bin/sh\necho 'QEMU emulator 7.2'\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:" + os.environ["PATH"])
    monkeypatch.setattr(vm, "vng_tool", lambda name: str(fake_vng))
    monkeypatch.setattr(vm, "PORT_CHECK_S", 0.2)
    bz = tmp_path / "bzImage"
    bz.write_text("kernel")
    return bz


def _boot(bz: Path, tmp_path: Path, **kw: object):  # type: ignore[no-untyped-def]
    return bootmod.boot(bz, tmp_path / "vm", bootmod.BootSpec(accel="tcg"), paths.cache_root(),
                        guest_factory=FakeGuest.factory(), **kw)  # type: ignore[arg-type]


def test_boot_stops_the_guest_on_normal_exit(fake_host: Path, tmp_path: Path) -> None:
    seen = []
    with _boot(fake_host, tmp_path, on_accel=seen.append) as b:
        assert b.vm.alive() and b.accel.accel == "tcg" and seen == [b.accel]
        assert "cat /proc/uptime" in b.guest.commands
    assert not b.vm.alive()
    assert not (tmp_path / "vm" / "rhscratch.ext4").exists()  # scratch images removed


def test_boot_waits_for_the_ready_line_and_times_the_first_command(fake_host: Path,
                                                                    tmp_path: Path) -> None:
    with _boot(fake_host, tmp_path) as b:
        assert b.guest.ready == b.vm.guest_ready  # connect() waits for GUEST_READY
        assert b.guest_ready_s is None  # the fake vng never prints it
        b.vm.console_log.write_text(f"[    6.66] {vm.GUEST_READY}\n")
        assert b.vm.guest_ready()
        assert b.first_command_s == round(b.boot_to_shell_s - b.boot_to_ssh_s, 2) >= 0


def test_boot_stops_the_guest_on_an_exception(fake_host: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), _boot(fake_host, tmp_path) as b:
        raise RuntimeError("a stage failed")
    assert not b.vm.alive()


def test_boot_stops_the_guest_on_sigterm(fake_host: Path, tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted), _boot(fake_host, tmp_path) as b:
        os.kill(os.getpid(), signal.SIGTERM)
    assert not b.vm.alive()
    assert signal.getsignal(signal.SIGTERM) == before  # handler restored


def test_boot_keeps_the_guest_only_when_asked(fake_host: Path, tmp_path: Path) -> None:
    with _boot(fake_host, tmp_path) as b:
        b.keep = True
    assert b.vm.alive()
    b.vm.stop()


def test_guest_setup_records_facts_or_why_not(tmp_path: Path) -> None:
    project = tmp_path / "p"
    missing = bootmod.guest_setup(FakeGuest(), project, tmp_path / "setup.log")
    assert not missing.ok and "missing" in missing.detail
    (project / "selftests").mkdir(parents=True)
    (project / "selftests" / "guest-setup.sh").write_text("#!/bin/sh\n")
    res = bootmod.guest_setup(FakeGuest(), project, tmp_path / "setup.log")
    assert res.ok and res.facts["swap"] == "/dev/vdb"
    assert "[exit 0]" in (tmp_path / "setup.log").read_text()


class _Alive:
    def __init__(self, up: bool = True) -> None:
        self.up = up

    def alive(self) -> bool:
        return self.up


def test_collect_dmesg_once_while_alive_briefly_when_stopping(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    from harness.stages.ssh import CmdResult

    g = FakeGuest(dmesg="log\n")
    out = tmp_path / "dmesg.log"
    bootmod.collect_dmesg(g, _Alive(False), out)  # type: ignore[arg-type]
    assert not out.exists() and g.calls == []
    bootmod.collect_dmesg(g, _Alive(), out, brief=True)  # type: ignore[arg-type]
    assert out.read_text() == "log\n" and g.deadlines == [bootmod.DMESG_BRIEF_S]
    bootmod.collect_dmesg(g, _Alive(), out)  # type: ignore[arg-type]
    assert len(g.calls) == 1  # once
    out.unlink()
    slow = FakeGuest(programs={})
    slow._answer = lambda c, t, w: CmdResult(c, None, "", "", 20.0, True,  # type: ignore[method-assign]
                                             "no exit status within 20s (the host's limit)")
    with caplog.at_level("WARNING", logger="harness.stages.boot"):
        bootmod.collect_dmesg(slow, _Alive(), out, brief=True)  # type: ignore[arg-type]
    assert not out.exists() and "no dmesg (no exit status within 20s" in caplog.text

    def broken(*a: object, **k: object) -> CmdResult:
        raise OSError("gone")

    slow.run = broken  # type: ignore[method-assign]
    bootmod.collect_dmesg(slow, _Alive(), out)  # type: ignore[arg-type]
    assert not out.exists()


def test_configure_owns_fragments_and_build_dir_keys(env) -> None:  # type: ignore[no-untyped-def]
    tree, project, _ = env
    frags = configmod.fragments_for(project, tree, "tiny")
    assert [f.name for f in frags][-4:] == ["recharge.config", "testenv.config", "mmtests.config",
                                           "tiny.config"]
    patched = configmod.kbuild_for(paths.cache_root(), "wt", frags, "tiny")
    assert configmod.kbuild_for(paths.cache_root(), "wt", frags, "tiny", unpatched=True) != patched
    fdir = tree.parent / "fragments"
    cfg = configmod.configure(project, tree, "c1", paths.cache_root(), "wt", "tiny",
                              tree.parent / "config.log", fragments_dir=fdir)
    assert cfg.kbuild == patched and cfg.config.is_file()
    assert sorted(p.name for p in fdir.iterdir())[0].startswith("0-")
    with pytest.raises(UserError, match="not found"):
        configmod.fragments_for(project, tree, "debug")  # debug.config is not in the project


def test_mode_run_records_no_verdict_when_the_mode_dies(tmp_path: Path) -> None:
    opts = Options(out=tmp_path / "out", argv=("compare",))
    with pytest.raises(KeyboardInterrupt), mode_run(opts, "compare") as mr:
        raise KeyboardInterrupt
    rec = record.load(mr.run_dir)
    assert (rec.exit_code, rec.status) == (2, "no verdict")
    assert rec.group("results")["error"] == "interrupted by SIGINT"
    with mode_run(opts, "bisect") as mr2:
        mr2.finish(0, "found", group=("bisect", {"first_bad": "abc"}))
    rec2 = record.load(mr2.run_dir)
    assert rec2.exit_code == 0 and rec2.group("bisect")["first_bad"] == "abc"
    assert rec2.group("build")["command"] == "bisect" and mr2.run_dir.name == "2"


def test_merge_writes_a_run_record(tmp_path: Path) -> None:
    from harness.modes.merge import load_shards, merge_runs
    from harness.report.mode import make_run_dir

    shard = tmp_path / "s1"
    shard.mkdir()
    (shard / "junit.xml").write_text('<testsuites><testsuite name="a"><testcase name="x"/>'
                                     '</testsuite></testsuites>')
    code, _ = merge_runs(load_shards([shard]), make_run_dir(tmp_path / "out"), ["merge", "s1"])
    rec = record.load(tmp_path / "out" / "1")
    assert rec.exit_code == code == 0 and rec.group("build")["command"] == "merge"
    assert rec.group("merge")["inputs"] == [str(shard)]
    assert record.read_dict(tmp_path / "out" / "1")["shards"][0]["source"] == str(shard)


def test_project_fixture_has_no_debug_fragment(tmp_path: Path) -> None:
    assert not (make_project(tmp_path / "p") / "kconfig" / "debug.config").exists()
