"""proc: output tee, timeouts and whole-session kills (nothing may survive)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from harness import proc
from harness.errors import CommandTimeout, InfraError

from fakes import write_exe


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_run_tees_output_and_returns_status(tmp_path: Path) -> None:
    logf = tmp_path / "x.log"
    res = proc.run(["sh", "-c", "echo out; echo err >&2; exit 3"], cwd=tmp_path, timeout=10,
                   log_path=logf)
    assert res.returncode == 3 and not res.ok
    assert "out" in res.output and "err" in res.output
    text = logf.read_text()
    assert text.startswith(f"$ cd {tmp_path} && sh -c")
    assert "out\n" in text and "[exit 3" in text


def test_run_separate_stderr(tmp_path: Path) -> None:
    res = proc.run(["sh", "-c", "echo out; echo err >&2"], cwd=tmp_path, timeout=10,
                   merge_stderr=False)
    assert res.output == "out\n" and res.stderr == "err\n"


def test_missing_command_is_infra_error(tmp_path: Path) -> None:
    with pytest.raises(InfraError, match="command not found: no-such-tool-xyz"):
        proc.run(["no-such-tool-xyz"], cwd=tmp_path, timeout=5)


def test_timeout_kills_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    script = write_exe(tmp_path / "spawn.sh", f"""
        #!/bin/sh
        sleep 300 & echo $! >> {pidfile}
        sh -c 'sleep 300' & echo $! >> {pidfile}
        sleep 300
    """)
    start = time.monotonic()
    with pytest.raises(CommandTimeout, match="timed out after 1s"):
        proc.run([str(script)], cwd=tmp_path, timeout=1)
    assert time.monotonic() - start < 10
    pids = [int(p) for p in pidfile.read_text().split()]
    assert pids and not any(_alive(p) for p in pids)


def test_session_kill_catches_processes_that_left_the_group(tmp_path: Path) -> None:
    """QEMU-like grandchildren that setpgid() away are still in the session and get killed."""
    pidfile = tmp_path / "pid"
    grandchild = (f"import os, time; os.setpgid(0, 0); "
                  f"open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(300)")
    parent = (f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
              f"{grandchild!r}]); time.sleep(300)")
    bg = proc.Background([sys.executable, "-c", parent], cwd=tmp_path,
                         stdout_path=tmp_path / "o", stderr_path=tmp_path / "e")
    deadline = time.monotonic() + 10
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    assert os.getpgid(pid) == pid != bg.pid  # really left vng's process group
    bg.stop(grace_s=2)
    assert not _alive(pid)


def test_interrupt_during_wait_kills_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    script = write_exe(tmp_path / "spawn.sh", f"""
        #!/bin/sh
        sleep 300 & echo $! >> {pidfile}
        sleep 300
    """)
    ticks = []

    def tick() -> None:
        ticks.append(1)
        if len(ticks) >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        proc.run([str(script)], cwd=tmp_path, timeout=60, on_tick=tick)
    pids = [int(p) for p in pidfile.read_text().split()]
    assert not any(_alive(p) for p in pids)
    assert not proc._LIVE


def test_kill_all_stops_registered_background(tmp_path: Path) -> None:
    bg = proc.Background(["sleep", "300"], cwd=tmp_path, stdout_path=tmp_path / "o",
                         stderr_path=tmp_path / "e")
    assert bg.alive()
    proc.kill_all()
    bg.proc.wait(timeout=5)
    assert not bg.alive()


def test_on_line_callback_sees_lines(tmp_path: Path) -> None:
    seen: list[str] = []
    proc.run(["sh", "-c", "echo a; echo b"], cwd=tmp_path, timeout=10, on_line=seen.append)
    assert seen == ["a", "b"]


def test_interrupt_gives_a_cleaning_child_its_grace(tmp_path: Path) -> None:
    """A nested harness run stops its VM (in a session of its own) when it gets SIGTERM;
    the parent must wait for that instead of SIGKILLing it after the default 5 s."""
    pidfile, done = tmp_path / "vm.pid", tmp_path / "cleaned"
    script = write_exe(tmp_path / "child.sh", f"""
        #!/bin/sh
        setsid sleep 300 & echo $! > {pidfile}
        trap 'sleep 6; kill $(cat {pidfile}); touch {done}; exit 2' TERM
        while :; do sleep 0.1; done
    """)
    ticks = []

    def tick() -> None:
        ticks.append(1)
        if len(ticks) >= 2:
            raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            proc.run([str(script)], cwd=tmp_path, timeout=60, on_tick=tick, stop_grace_s=30)
        assert done.exists()  # the child finished its cleanup
        assert not _alive(int(pidfile.read_text()))  # and its "VM" (another session) is gone
    finally:
        if pidfile.exists() and _alive(int(pidfile.read_text())):
            os.kill(int(pidfile.read_text()), 9)
