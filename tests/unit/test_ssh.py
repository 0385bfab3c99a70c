"""ssh: back-off/deadline, run with timeouts, SFTP, host-key pinning (against a local sshd)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness.errors import SshError
from harness.stages import vm
from harness.stages.ssh import Guest

SSHD = "/usr/sbin/sshd"


@pytest.fixture
def sshd(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A throw-away sshd on 127.0.0.1 with a per-test client key and host key."""
    if not os.access(SSHD, os.X_OK) or os.geteuid() != 0 or not shutil.which("ssh-keygen"):
        pytest.skip("needs root and openssh-server")
    d = tmp_path / "sshd"
    d.mkdir()
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)],
                       check=True)
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    port = vm.free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPermitRootLogin yes\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPidFile none\nSubsystem sftp internal-sftp\n")
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=open(d / "log", "w"),
                            start_new_session=True)
    yield port, d
    proc.terminate()
    proc.wait(timeout=10)


def test_connect_deadline_when_nothing_listens(tmp_path: Path) -> None:
    port = vm.free_port()
    g = Guest("127.0.0.1", port, "root", tmp_path / "nokey")
    start = time.monotonic()
    with pytest.raises(SshError, match=f"127.0.0.1:{port} not answering after 2s"):
        g.connect(2.0)
    assert time.monotonic() - start < 6


def test_connect_gives_up_when_guest_dies(tmp_path: Path) -> None:
    g = Guest("127.0.0.1", vm.free_port(), "root", tmp_path / "nokey")
    with pytest.raises(SshError, match="guest exited while waiting"):
        g.connect(60.0, alive=lambda: False)


def test_run_put_get_and_timeouts(sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port, d = sshd
    g = Guest("127.0.0.1", port, "root", d / "client", [d / "host.pub"])
    waited = g.connect(20.0)
    assert waited < 20
    r = g.run("echo out; echo err >&2; exit 3", 30)
    assert (r.exit_code, r.stdout, r.stderr, r.timed_out) == (3, "out\n", "err\n", False)
    r = g.run("pwd", 30, cwd="/tmp")
    assert r.stdout.strip() == "/tmp"
    start = time.monotonic()
    r = g.run("sleep 60", 1, kill_after=1)
    assert r.timed_out and r.exit_code == 124 and time.monotonic() - start < 10
    src = tmp_path / "in.txt"
    src.write_text("payload\n")
    g.put(src, str(tmp_path / "remote.txt"))
    g.get(str(tmp_path / "remote.txt"), tmp_path / "back" / "out.txt")
    assert (tmp_path / "back" / "out.txt").read_text() == "payload\n"
    # exact bytes, no trailing newline, large output, through the persistent shell
    r = g.run("printf 'a\\nb'; head -c 300000 /dev/zero | tr '\\0' x; printf E >&2", 30)
    assert r.stdout.startswith("a\nb") and len(r.stdout) == 300003 and r.stderr == "E"
    assert g._shell is not None and g._shell.n >= 4
    # the one-session-per-command path gives the same answers
    r = g.run_exec("echo out; exit 5", 30, cwd="/tmp")
    assert (r.exit_code, r.stdout) == (5, "out\n")
    r = g.run_exec("sleep 60", 1, kill_after=1)
    assert r.timed_out
    g.close()


def test_wrong_host_key_is_rejected(sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port, d = sshd
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")],
                   check=True)
    g = Guest("127.0.0.1", port, "root", d / "client", [tmp_path / "other.pub"])
    with pytest.raises(SshError, match="host key does not match"):
        g.connect(5.0)


def test_output_lines_stream_while_the_command_runs(sshd) -> None:  # type: ignore[no-untyped-def]
    port, d = sshd
    g = Guest("127.0.0.1", port, "root", d / "client", [d / "host.pub"])
    g.connect(20.0)
    got: list[tuple[str, float]] = []
    cmd = "echo one; sleep 1.5; echo '@@RC 1 0'; echo two >&2; sleep 1.5; printf last"
    for run in (g.run, g.run_exec):
        got.clear()
        start = time.monotonic()
        r = run(cmd, 30, on_line=lambda l, t0=start: got.append((l, time.monotonic() - t0)))
        took = time.monotonic() - start
        assert r.exit_code == 0 and r.stdout == "one\n@@RC 1 0\nlast" and r.stderr == "two\n"
        assert [l for l, _ in got] == ["one", "@@RC 1 0", "last"], run
        assert got[0][1] < took - 2.0  # "one" arrived long before the end
    # a child left running does not hold the command (its output goes to a file)
    start = time.monotonic()
    r = g.run("(sleep 20 &) ; echo bye", 30, on_line=lambda l: None)
    assert r.stdout == "bye\n" and time.monotonic() - start < 10
    assert g.persistent
    g.close()


def test_shell_script_streaming_form() -> None:
    from harness.stages.ssh import shell_script

    plain = shell_script(3, "ls", 10, cwd=None, kill_after=5)
    assert "tail" not in plain and "@@RC 3 $rc" in plain
    s = shell_script(4, "ls", 10, cwd="/x", kill_after=5, stream=True)
    assert "tail -s 0.2 -n +1 -f --pid=$p" in s and "'s/^/@@O 4 /'" in s
    assert s.index("wait $p; rc=$?; echo;") < s.index("@@RC 4 $rc")


def test_connect_waits_until_the_guest_is_ready(sshd) -> None:  # type: ignore[no-untyped-def]
    port, d = sshd
    asked: list[float] = []
    start = time.monotonic()

    def ready() -> bool:
        asked.append(time.monotonic() - start)
        return asked[-1] > 1.0

    g = Guest("127.0.0.1", port, "root", d / "client", [d / "host.pub"])
    waited = g.connect(20.0, ready=ready)
    assert waited > 1.0 and len(asked) > 3 and g.client is not None
    g.close()


def test_connect_goes_on_without_ready_after_the_grace(sshd, caplog) -> None:  # type: ignore[no-untyped-def]
    port, d = sshd
    g = Guest("127.0.0.1", port, "root", d / "client", [d / "host.pub"])
    with caplog.at_level("WARNING", logger="harness.stages.ssh"):
        waited = g.connect(20.0, ready=lambda: False, ready_grace_s=0.5)
    assert 0.5 <= waited < 15 and "did not report ready" in caplog.text
    g.close()


def test_connect_deadline_while_not_ready(tmp_path: Path) -> None:
    g = Guest("127.0.0.1", vm.free_port(), "root", tmp_path / "nokey")
    with pytest.raises(SshError, match="not answering after 1s .the guest never reported ready"):
        g.connect(1.0, ready=lambda: False)
