"""ssh: back-off/deadline, run with timeouts, SFTP, host-key pinning (against a local sshd);
the ways a command ends early (Ctrl-C, abort(), the host's deadline), also against a
stand-in channel."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import paramiko
import pytest

from harness.errors import BootError, Interrupted, SshError
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


def test_shell_script_runs_few_programs_per_command() -> None:
    """Every program the wrapper starts costs ~50 ms under TCG, for every command: the
    output files are the shell's own ($$), overwritten by its next command, not removed
    (rm) each time; the scratch directory is made only when missing."""
    from harness.stages.ssh import _SCRATCH, shell_script

    def programs(s: str) -> list[str]:
        return [w for w in ("mkdir", "timeout", "sh -c", "stat", "cat", "rm", "tail", "sed")
                if f"{w} " in s]

    s = shell_script(7, "true && false", 10, cwd=None, kill_after=5)
    assert f"{_SCRATCH}/$$.out" in s and f"{_SCRATCH}/$$.err" in s
    assert "rm " not in s and f"[ -d {_SCRATCH} ] || mkdir -p {_SCRATCH}" in s
    # one cat sends both files back, framed by lines from a here-document (the
    # shell's own: no program), instead of stat for their sizes and cat
    assert programs(s) == ["mkdir", "timeout", "sh -c", "cat"]
    # a plain program and its arguments: timeout execs it, no sh -c in between
    s = shell_script(8, "cat /proc/uptime", 10, cwd=None, kill_after=5)
    assert "timeout -k 5 10 cat /proc/uptime )" in s and programs(s) == [
        "mkdir", "timeout", "cat"]
    for shell_syntax in ("exit 3", "cd /tmp", "A=1 env", "echo $HOME", "ls *", "-x", "a; b",
                         "echo 'q'"):
        assert "sh -c" in shell_script(9, shell_syntax, 10, cwd=None, kill_after=5)
    assert "sh -c" in shell_script(9, "ls", 10, cwd="/x", kill_after=5)


def test_outputs_come_back_byte_exact(sshd) -> None:  # type: ignore[no-untyped-def]
    """The framing of the persistent shell's outputs: no trailing newline, empty
    outputs, lines that look like the frame's, binary-ish text, large outputs."""
    port, d = sshd
    g = Guest("127.0.0.1", port, "root", d / "client", [d / "host.pub"])
    g.connect(20.0)
    cases = {
        "printf a": ("a", ""),
        "true": ("", ""),
        "printf 'x\\n' >&2": ("", "x\n"),
        "printf '\\n\\n'; printf '\\n' >&2": ("\n\n", "\n"),
        "echo '@@E 1'; echo '@@F 1' >&2; echo '@@RC 1 0'": ("@@E 1\n@@RC 1 0\n", "@@F 1\n"),
        "seq 1 200000": ("".join(f"{i}\n" for i in range(1, 200001)), ""),
    }
    for cmd, (out, err) in cases.items():
        r = g.run(cmd, 30)
        assert (r.exit_code, r.stdout, r.stderr) == (0, out, err), cmd
    assert g.persistent
    g.close()


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


def test_connect_stops_when_ready_raises(tmp_path: Path) -> None:
    # the guest command reported a failed step (harness.stages.vm.Vm.guest_ready):
    # no attempt, no waiting out the deadline
    def ready() -> bool:
        raise BootError("guest set-up failed: network")

    g = Guest("127.0.0.1", vm.free_port(), "root", tmp_path / "nokey")
    start = time.monotonic()
    with pytest.raises(BootError, match="set-up failed: network"):
        g.connect(60.0, ready=ready)
    assert time.monotonic() - start < 5


def test_connect_deadline_while_not_ready(tmp_path: Path) -> None:
    g = Guest("127.0.0.1", vm.free_port(), "root", tmp_path / "nokey")
    with pytest.raises(SshError, match="not answering after 1s .the guest never reported ready"):
        g.connect(1.0, ready=lambda: False)


class _Channel:
    """A session channel running the persistent shell (harness.stages.ssh._Shell), or one
    exec'd command: answers the shell's scripts from ``answers`` (a key the script
    contains -> the command's stdout; ``None``: a program that runs on and prints one
    progress line, then nothing)."""

    def __init__(self, client: "_Client") -> None:
        self.client = client
        self.command = ""
        self.sent: list[str] = []
        self.buf = b""
        self.closed = False
        self.lock = threading.Lock()
        self.busy = threading.Event()  # the shell is running a command that does not end
        self.exit: int | None = None  # an exec'd command's exit status, once it ended

    def exec_command(self, command: str) -> None:
        self.command = command
        if self.client.fail_exec is not None:
            raise self.client.fail_exec
        if self.client.hang_exec:  # sshd never answers; paramiko waits until closed
            while not self.closed:
                time.sleep(0.01)
            raise paramiko.SSHException("Channel closed.")
        if command != "exec /bin/sh":  # one command in a session of its own (run_exec)
            out = next((v for k, v in self.client.answers.items() if k in command), "")
            if out is None:
                self.busy.set()
            else:
                self.buf, self.exit = out.encode(), 0

    # the exec channel's side (Guest.run_exec)
    def recv_ready(self) -> bool:
        return bool(self.buf)

    def recv_stderr_ready(self) -> bool:
        return False

    def exit_status_ready(self) -> bool:
        exc = self.client.raise_in_recv
        if exc is not None:
            self.client.raise_in_recv = None
            raise exc
        return self.exit is not None

    def recv_exit_status(self) -> int:
        assert self.exit is not None
        return self.exit

    def settimeout(self, t: float) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        if self.closed:
            raise OSError("Socket is closed")
        script = data.decode()
        self.sent.append(script)
        if self.busy.is_set():  # a shell still busy reads the next command later
            return
        m = re.search(r"@@RC (\d+) ", script)
        assert m is not None
        n = m.group(1)
        out = next((v for k, v in self.client.answers.items() if k in script), "")
        with self.lock:
            if out is None:
                self.busy.set()
                self.buf += f"@@O {n} progress\n".encode()
                return
            tag = re.search(r"@@E (\S+)", script)
            assert tag is not None
            t = tag.group(1)
            self.buf += f"@@RC {n} 0\n{out}\n@@E {t}\n\n@@F {t}\n".encode()

    def recv(self, size: int) -> bytes:
        with self.lock:
            if self.closed:
                return b""
            exc = self.client.raise_in_recv
            if exc is not None and self.busy.is_set() and not self.buf:
                self.client.raise_in_recv = None
                raise exc
            data, self.buf = self.buf[:size], self.buf[size:]
        if data:
            return data
        time.sleep(0.01)
        raise socket.timeout("timed out")

    def close(self) -> None:
        self.closed = True


class _Client:
    """Stands in for paramiko.SSHClient: ``get_transport().open_session()``."""

    def __init__(self, answers: dict[str, str | None]):
        self.answers = answers
        self.channels: list[_Channel] = []
        self.raise_in_recv: BaseException | None = None
        self.fail_exec: BaseException | None = None  # raised by the next exec_command
        self.hang_exec = False  # exec_command waits until its channel is closed

    def get_transport(self) -> "_Client":
        return self

    def open_session(self, timeout: float | None = None) -> _Channel:
        self.channels.append(_Channel(self))
        return self.channels[-1]

    def close(self) -> None:
        pass


def _guest(client: _Client) -> Guest:
    g = Guest("127.0.0.1", 22, "root", Path("key"))
    g.client = client  # type: ignore[assignment]
    return g


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), Interrupted("SIGTERM"), SystemExit(1)])
def test_an_interrupted_command_leaves_no_busy_shell_behind(exc: BaseException) -> None:
    """Ctrl-C (SIGTERM, exit) while waiting for a command: its shell is closed and
    dropped, so that the next command (dmesg in the cleanup) gets a fresh shell at once
    instead of queueing behind the interrupted program."""
    client = _Client({"dmesg": "[    0.0] Linux version 6.12\n", "scenarios": None})
    g = _guest(client)
    client.raise_in_recv = exc
    with pytest.raises(type(exc)):
        g.run("scenarios", 600, on_line=lambda l: None)
    busy = client.channels[0]
    assert busy.closed and g._shell is None
    start = time.monotonic()
    r = g.run("dmesg", 20)
    assert r.exit_code == 0 and r.stdout == "[    0.0] Linux version 6.12\n"
    assert time.monotonic() - start < 5
    assert len(client.channels) == 2 and not busy.sent[1:]  # nothing more to the old shell


def test_ctrl_c_in_an_output_callback_closes_the_shell_too() -> None:
    client = _Client({"dmesg": "log\n", "scenarios": None})
    g = _guest(client)

    def ctrl_c(line: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        g.run("scenarios", 600, on_line=ctrl_c)
    assert client.channels[0].closed and g._shell is None
    assert g.run("dmesg", 20).stdout == "log\n"


def test_deadline_bounds_the_host_wait() -> None:
    """``deadline_s``: the host gives up then, whatever the command's own timeout."""
    client = _Client({"scenarios": None, "dmesg": "log\n"})
    g = _guest(client)
    start = time.monotonic()
    r = g.run("scenarios", 600, deadline_s=0.5)
    assert time.monotonic() - start < 3
    assert r.exit_code is None and r.timed_out and "0.5s" in (r.error or "")
    assert client.channels[0].closed and g._shell is None
    assert g.run("dmesg", 20).stdout == "log\n"


def test_abort_cuts_off_the_command_in_flight_from_another_thread() -> None:
    """``abort()`` (the harness stopping a --parallel run): the command waiting in another
    thread ends at once without a result and is not tried again in a session of its
    own; the next command opens a fresh shell."""
    client = _Client({"scenarios": None, "dmesg": "log\n"})
    g = _guest(client)
    got: list = []
    t = threading.Thread(target=lambda: got.append(g.run("scenarios", 600)))
    t.start()
    end = time.monotonic() + 5
    while not (client.channels and client.channels[0].busy.is_set()):
        assert time.monotonic() < end
        time.sleep(0.01)
    start = time.monotonic()
    g.abort()
    t.join(5)
    assert not t.is_alive() and time.monotonic() - start < 2
    r = got[0]
    assert r.exit_code is None and not r.timed_out and "cut off" in (r.error or "")
    assert len(client.channels) == 1 and g.persistent  # not run again by an exec
    assert g.run("dmesg", 20).stdout == "log\n" and len(client.channels) == 2
    g.abort()  # between two commands: the idle shell is closed, the next one opens another
    assert g.run("dmesg", 20).stdout == "log\n" and len(client.channels) == 3


def test_one_session_per_command_ends_on_ctrl_c_abort_and_deadline() -> None:
    """Without the persistent shell (``run_exec``): the same ways out, each closing its
    session."""
    client = _Client({"scenarios": None, "dmesg": "log\n"})
    g = _guest(client)
    g.persistent = False
    start = time.monotonic()
    r = g.run("scenarios", 600, deadline_s=0.3)
    assert r.timed_out and "within 0.3s" in (r.error or "") and time.monotonic() - start < 3
    assert client.channels[-1].closed
    client.raise_in_recv = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        g.run("scenarios", 600)
    assert client.channels[-1].closed and g._exec_chan is None
    got: list = []
    t = threading.Thread(target=lambda: got.append(g.run("scenarios", 600)))
    t.start()
    end = time.monotonic() + 5
    while len(client.channels) < 3 or not client.channels[2].busy.is_set():
        assert time.monotonic() < end
        time.sleep(0.01)
    g.abort()
    t.join(5)
    assert not t.is_alive() and got[0].exit_code is None and "cut off" in (got[0].error or "")
    assert g.run("dmesg", 20).stdout == "log\n"


@pytest.mark.parametrize("persistent", [True, False])
def test_deadline_holds_while_sshd_does_not_answer(persistent: bool) -> None:
    """The deadline also bounds the wait for sshd to start the shell (or the command):
    paramiko has no timeout there, a watchdog closes the channel."""
    client = _Client({"dmesg": "log\n"})
    client.hang_exec = True
    g = _guest(client)
    g.persistent = persistent
    start = time.monotonic()
    r = g.run("dmesg", 20, deadline_s=0.3)
    assert time.monotonic() - start < 3
    assert r.exit_code is None and r.timed_out and "within 0.3s" in (r.error or "")
    assert client.channels[0].closed and g.persistent == persistent
    client.hang_exec = False
    assert g.run("dmesg", 20, deadline_s=5).stdout == "log\n"


def test_ctrl_c_while_a_shell_opens_closes_its_channel() -> None:
    client = _Client({"dmesg": "log\n"})
    g = _guest(client)
    client.fail_exec = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        g.run("dmesg", 20)
    assert client.channels[0].closed and g._shell is None and g.persistent
    client.fail_exec = None
    assert g.run("dmesg", 20).stdout == "log\n"


def test_an_interrupted_command_does_not_hold_the_next_one(sshd) -> None:  # type: ignore[no-untyped-def]
    """The same against a real sshd: the interrupted program goes on in the old shell,
    the next command does not wait for it."""
    port, d = sshd
    g = Guest("127.0.0.1", port, "root", d / "client", [d / "host.pub"])
    g.connect(20.0)

    def ctrl_c(line: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        g.run("echo started; sleep 20; echo late", 60, on_line=ctrl_c)
    start = time.monotonic()
    r = g.run("echo next", 30)
    assert r.exit_code == 0 and r.stdout == "next\n"
    assert time.monotonic() - start < 10
    # abort() from another thread ends the wait of a command at once, streamed or not
    for stream in (None, lambda l: None):
        got: list = []
        t = threading.Thread(target=lambda s=stream, got=got: got.append(
            g.run("sleep 20", 60, on_line=s)))
        t.start()
        time.sleep(1.0)
        start = time.monotonic()
        g.abort()
        t.join(10)
        assert not t.is_alive() and time.monotonic() - start < 5
        assert got[0].exit_code is None and "cut off" in (got[0].error or "")
        r = g.run("echo next", 30)
        assert r.stdout == "next\n" and time.monotonic() - start < 10
    assert g.persistent
    g.close()
