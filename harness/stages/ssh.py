"""Stage 6: talk to the guest over SSH (paramiko).

The guest's sshd is reached on 127.0.0.1:PORT only (QEMU user networking).  We log
in as root with the per-run client key of harness.stages.sshd, and we *verify* the
guest's host key against the run's host key made next to it (no trust-on-first-use,
no known_hosts file touched).
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
import shlex
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import paramiko

from harness.errors import SshError

log = logging.getLogger(__name__)

# paramiko logs every failed banner read while the guest boots: keep it quiet.
logging.getLogger("paramiko").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class CmdResult:
    command: str
    exit_code: int | None  # None: no exit status (timeout, connection lost)
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    error: str | None = None  # connection problem, if any


class Guest:
    """An SSH session to the guest: ``connect()``, ``run()``, ``put()``, ``get()``."""

    def __init__(self, host: str, port: int, user: str, key_path: Path,
                 host_key_files: list[Path] | None = None):
        self.host = host
        self.port = port
        self.user = user
        self.key_path = key_path
        self.host_key_files = host_key_files or []
        self.client: paramiko.SSHClient | None = None
        self.persistent = True
        self._shell: _Shell | None = None
        self._exec_chan: paramiko.Channel | None = None  # run_exec's command in flight
        self._cuts = 0  # commands cut off so far (abort(), a deadline's watchdog)
        self._cut_why = ""  # why the last one was
        self._in_flight: object | None = None  # the token of the run() in progress

    def _new_client(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        keys = client.get_host_keys()
        name = f"[{self.host}]:{self.port}" if self.port != 22 else self.host
        for f in self.host_key_files:
            try:
                kind, b64 = f.read_text().split()[:2]
                keys.add(name, kind, paramiko.PKey.from_type_string(kind, base64.b64decode(b64)))
            except (OSError, ValueError, paramiko.SSHException):
                log.debug("ssh: cannot load host key %s", f)
        if keys.keys():
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        else:  # no per-run host keys to pin (e.g. a user-started guest)
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        return client

    def connect(self, deadline_s: float, alive: Callable[[], bool] | None = None,
                ready: Callable[[], bool] | None = None) -> float:
        """Retry with back-off until sshd answers; return seconds waited.

        ``ready``: no attempt before it says the guest is ready for sessions
        (harness.stages.vm.Vm.guest_ready: the guest command starts sshd, after
        root's passwd entry is changed); it may raise to end the wait with a cause.
        Raises :class:`SshError` at the deadline or as soon as ``alive()`` says
        the guest is gone.
        """
        start = time.monotonic()
        delay = 0.5
        last = "no attempt"
        while True:
            if alive is not None and not alive():
                raise SshError(f"guest exited while waiting for SSH (last: {last})")
            if ready is not None and not ready():
                waited = time.monotonic() - start
                if waited > deadline_s:
                    raise SshError(f"SSH to {self.host}:{self.port} not answering after "
                                   f"{deadline_s:.0f}s (the guest never reported ready)")
                time.sleep(0.1)
                continue
            client = self._new_client()
            try:
                client.connect(
                    self.host, port=self.port, username=self.user,
                    key_filename=str(self.key_path), look_for_keys=False, allow_agent=False,
                    timeout=10, banner_timeout=10, auth_timeout=10,
                )
                transport = client.get_transport()
                if transport is not None:
                    transport.set_keepalive(15)
                self.client = client
                return time.monotonic() - start
            except paramiko.BadHostKeyException as e:
                client.close()
                raise SshError(f"guest host key does not match the run's host key: {e}") from e
            except (paramiko.SSHException, OSError, EOFError) as e:
                client.close()
                last = f"{type(e).__name__}: {e}"[:160]
            if time.monotonic() - start + delay > deadline_s:
                raise SshError(f"SSH to {self.host}:{self.port} not answering after "
                               f"{deadline_s:.0f}s (last: {last})")
            time.sleep(delay)
            delay = min(delay * 1.5, 5.0)

    def run(self, command: str, timeout: float, *, cwd: str | None = None,
            kill_after: float = 10.0, on_line: LineSink | None = None,
            deadline_s: float | None = None) -> CmdResult:
        """Run ``command`` (a shell string) with a guest-side ``timeout`` and a host deadline.

        ``on_line``: called with each line of stdout as the guest prints it (progress);
        the result's ``stdout`` is the exact output all the same.
        ``deadline_s``: the host waits no longer than this, opening a shell included
        (default: ``timeout + kill_after`` and a margin for the shell itself).

        Goes through one persistent ``/bin/sh`` channel: every new SSH session
        costs a fork and exec of sshd and the login shell, hundreds of milliseconds
        under TCG; a command on the open shell costs milliseconds.  Falls back to one
        SSH exec per command if that shell cannot be used.
        Exit code 124 from coreutils ``timeout`` is reported as ``timed_out``.

        An exception that ends the wait (Ctrl-C, SIGTERM, ``SystemExit``) closes that
        shell and forgets it: the command may still be running in it, and a next command
        written to it would wait behind the interrupted one.  The next command opens a
        fresh shell.
        """
        if self.client is None:
            raise SshError("not connected")
        start = time.monotonic()
        cuts = self._cuts
        token = self._in_flight = object()
        watchdog = None
        if deadline_s is not None:
            # paramiko waits for sshd's answer to a new session's command without a
            # timeout: past the deadline, the channel is closed under it.
            watchdog = threading.Timer(deadline_s + 1.0, self._cut, ("deadline", token))
            watchdog.daemon = True
            watchdog.start()
        try:
            res = self._run(command, timeout, cwd=cwd, kill_after=kill_after, on_line=on_line,
                            deadline_s=deadline_s, start=start)
        finally:
            self._in_flight = None
            if watchdog is not None:
                watchdog.cancel()
        if self._cuts != cuts and res.exit_code is None:
            if self._cut_why == "deadline":
                return CmdResult(command, None, res.stdout, res.stderr, res.duration_s, True,
                                 _no_exit_status(timeout, deadline_s))
            # abort(): not the shell's fault, nothing to retry
            return CmdResult(command, None, res.stdout, res.stderr, res.duration_s, False,
                             "cut off: the harness is stopping")
        return res

    def _run(self, command: str, timeout: float, *, cwd: str | None, kill_after: float,
             on_line: LineSink | None, deadline_s: float | None, start: float) -> CmdResult:
        assert self.client is not None
        if self.persistent:
            cuts = self._cuts
            if self._shell is not None and self._shell.chan.closed:
                self._shell = None  # closed while idle (abort() between two commands)
            try:
                if self._shell is None:
                    self._shell = _Shell(self.client, open_timeout=deadline_s)
                    self._shell.start()
                return self._shell.run(command, timeout, cwd=cwd, kill_after=kill_after,
                                       on_line=on_line, deadline_s=deadline_s, since=start)
            except _ShellBroken as e:
                self._shell = None
                if self._cuts != cuts:  # cut off (run() says why): nothing to retry
                    return CmdResult(command, None, "", "", time.monotonic() - start, False,
                                     "cut off")
                log.debug("ssh: persistent shell unusable (%s); one session per command", e)
                if e.result is not None:
                    return e.result
                self.persistent = False
            except BaseException:
                shell, self._shell = self._shell, None
                if shell is not None:
                    shell.close()
                raise
        return self.run_exec(command, timeout, cwd=cwd, kill_after=kill_after, on_line=on_line,
                             deadline_s=deadline_s)

    def abort(self) -> None:
        """Cut off the command in flight, from another thread (a ``--parallel`` run being
        stopped): its channel is closed, so its wait ends at once with no exit status
        (error ``cut off: ...``), and it is not tried again.  The command itself may go
        on in the guest; the next ``run`` opens a fresh shell."""
        self._cut("abort", None)

    def _cut(self, why: str, token: object | None) -> None:
        """Close the channel a command waits on (``token``: only if that ``run`` still
        waits: a watchdog that fires late)."""
        if token is not None and token is not self._in_flight:
            return
        self._cut_why = why
        self._cuts += 1
        shell, chan = self._shell, self._exec_chan
        if shell is not None:
            shell.close()
        if chan is not None:
            chan.close()

    def run_exec(self, command: str, timeout: float, *, cwd: str | None = None,
                 kill_after: float = 10.0, on_line: LineSink | None = None,
                 deadline_s: float | None = None) -> CmdResult:
        """Run ``command`` in its own SSH session (exec channel)."""
        if self.client is None:
            raise SshError("not connected")
        wrapped = command
        if cwd:
            wrapped = f"cd {shlex.quote(cwd)} && {wrapped}"
        wrapped = (f"exec timeout -k {int(kill_after)} {int(max(1, timeout))} "
                   f"sh -c {shlex.quote(wrapped)}")
        start = time.monotonic()
        out: list[bytes] = []
        err: list[bytes] = []
        lines = _LineSplitter(on_line)
        chan: paramiko.Channel | None = None
        try:
            transport = self.client.get_transport()
            if transport is None:
                raise SshError("SSH transport closed")
            chan = self._exec_chan = transport.open_session(timeout=deadline_s)
            chan.settimeout(1.0)
            chan.exec_command(wrapped)
            deadline = start + (timeout + kill_after + 15 if deadline_s is None else deadline_s)
            while True:
                got = False
                if chan.recv_ready():
                    out.append(chan.recv(65536))
                    lines.feed(out[-1])
                    got = True
                if chan.recv_stderr_ready():
                    err.append(chan.recv_stderr(65536))
                    got = True
                if chan.exit_status_ready() and not chan.recv_ready() \
                        and not chan.recv_stderr_ready():
                    break
                if time.monotonic() > deadline:
                    chan.close()
                    return CmdResult(command, None, _dec(out), _dec(err),
                                     time.monotonic() - start, True,
                                     _no_exit_status(timeout, deadline_s))
                if chan.closed and not chan.exit_status_ready():
                    return CmdResult(command, None, _dec(out), _dec(err),
                                     time.monotonic() - start, False, "channel closed")
                if not got:
                    time.sleep(0.05)
            code = chan.recv_exit_status()
            chan.close()
            lines.flush()
        except (paramiko.SSHException, OSError, EOFError, socket.timeout) as e:
            return CmdResult(command, None, _dec(out), _dec(err), time.monotonic() - start,
                             False, f"connection lost: {type(e).__name__}: {e}"[:200])
        except BaseException:  # Ctrl-C, SIGTERM: this session is of no further use
            if chan is not None:
                chan.close()
            raise
        finally:
            self._exec_chan = None
        return CmdResult(command, code, _dec(out), _dec(err), time.monotonic() - start,
                         timed_out=code == 124)

    def put(self, local: Path, remote: str) -> None:
        if self.client is None:
            raise SshError("not connected")
        with self.client.open_sftp() as sftp:
            sftp.put(str(local), remote)

    def get(self, remote: str, local: Path) -> None:
        if self.client is None:
            raise SshError("not connected")
        local.parent.mkdir(parents=True, exist_ok=True)
        with self.client.open_sftp() as sftp:
            sftp.get(remote, str(local))

    def close(self) -> None:
        if self._shell is not None:
            self._shell.close()
            self._shell = None
        if self.client is not None:
            self.client.close()
            self.client = None

    def __enter__(self) -> "Guest":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ShellBroken(Exception):
    def __init__(self, why: str, result: CmdResult | None = None):
        super().__init__(why)
        self.result = result  # the command's outcome, when the shell died running it


_SCRATCH = "/run/rh-harness-ssh"


class _Shell:
    """One ``/bin/sh`` on a channel; commands are written to its stdin.

    Per command N the shell runs it in a subshell with stdout/stderr in files
    under /run, then prints ``@@RC N <status>`` and the two files, each followed by a
    frame line with a tag new for each command, so the host reads exact outputs off one
    stream (:func:`shell_script`).
    """

    def __init__(self, client: paramiko.SSHClient, open_timeout: float | None = None):
        """Open the session (then :meth:`start`; the caller holds the shell in between,
        so that another thread can close its channel while sshd is slow to answer)."""
        transport = client.get_transport()
        if transport is None:
            raise _ShellBroken("no transport")
        try:
            self.chan = transport.open_session(timeout=open_timeout)
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise _ShellBroken(f"cannot open a shell channel: {e}") from e
        self.buf = b""
        self.n = 0

    def start(self) -> None:
        try:
            self.chan.exec_command("exec /bin/sh")
        except (paramiko.SSHException, OSError, EOFError) as e:
            self.close()
            raise _ShellBroken(f"cannot open a shell channel: {e}") from e
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        try:
            self.chan.close()
        except Exception:  # pragma: no cover
            pass

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline")
        self.chan.settimeout(min(remaining, 5.0))
        try:
            data = self.chan.recv(65536)
        except socket.timeout:
            if time.monotonic() >= deadline:
                raise
            return
        if not data:
            raise EOFError("shell channel closed")
        self.buf += data

    def _line(self, deadline: float) -> bytes:
        while b"\n" not in self.buf:
            self._fill(deadline)
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def _until(self, frame: bytes, deadline: float) -> bytes:
        """Everything before ``frame`` (consumed too)."""
        searched = 0
        while (i := self.buf.find(frame, searched)) < 0:
            searched = max(0, len(self.buf) - len(frame))
            self._fill(deadline)
        data, self.buf = self.buf[:i], self.buf[i + len(frame):]
        return data

    def run(self, command: str, timeout: float, *, cwd: str | None, kill_after: float,
            on_line: LineSink | None = None, deadline_s: float | None = None,
            since: float | None = None) -> CmdResult:
        """``deadline_s``: the most seconds to wait, counted from ``since`` (default: now;
        the caller's time includes opening this shell)."""
        self.n += 1
        n = self.n
        tag = _frame_tag(n)
        script = shell_script(n, command, timeout, cwd=cwd, kill_after=kill_after,
                              stream=on_line is not None, tag=tag)
        start = time.monotonic()
        if deadline_s is None:
            deadline = start + timeout + kill_after + 30
        else:
            deadline = (start if since is None else since) + deadline_s
        streamed = f"@@O {n} ".encode()
        try:
            self.chan.sendall(script.encode())
            while True:
                line = self._line(deadline)
                if line.startswith(f"@@RC {n} ".encode()):
                    code = int(line.split()[2])
                    break
                if on_line is not None and line.startswith(streamed):
                    _call(on_line, line[len(streamed):].decode("utf-8", "replace"))
            o = self._until(f"\n@@E {tag}\n".encode(), deadline)
            e = self._until(f"\n@@F {tag}\n".encode(), deadline)
        except socket.timeout:
            self.close()
            raise _ShellBroken("timed out", CmdResult(
                command, None, "", "", time.monotonic() - start, True,
                _no_exit_status(timeout, deadline_s))) from None
        except (paramiko.SSHException, OSError, EOFError, ValueError) as ex:
            self.close()
            took = time.monotonic() - start
            lost = CmdResult(command, None, "", "", took, False,
                             f"connection lost: {type(ex).__name__}: {ex}"[:200])
            # The very first command failing at once: the shell itself does not work
            # here (caller falls back to one session per command).  Otherwise the
            # guest or the connection went away while the command ran.
            raise _ShellBroken(str(ex), None if n == 1 and took < 5 else lost) from ex
        except BaseException:
            # Ctrl-C, SIGTERM, exit while the command runs: the shell may still be busy
            # with it and would run the next command only after it.  Never used again.
            self.close()
            raise
        return CmdResult(command, code, o.decode("utf-8", "replace"),
                         e.decode("utf-8", "replace"), time.monotonic() - start,
                         timed_out=code == 124)


def _no_exit_status(timeout: float, deadline_s: float | None) -> str:
    if deadline_s is None:
        return f"no exit status after {timeout:.0f}s"
    return f"no exit status within {deadline_s:g}s (the host's limit)"


_PLAIN_WORD = re.compile(r"[A-Za-z0-9_./:=,+@%-]+")
#: What only the shell can run (no program of that name to exec).
_SHELL_ONLY = frozenset({
    ".", ":", "alias", "bg", "break", "cd", "command", "continue", "eval", "exec", "exit",
    "export", "fg", "getopts", "hash", "jobs", "local", "read", "readonly", "return", "set",
    "shift", "source", "times", "trap", "type", "ulimit", "umask", "unalias", "unset", "wait"})


def _plain_words(command: str) -> list[str] | None:
    """The words of ``command`` if it is a simple command of plain words (a program
    and its arguments, nothing the shell would interpret), else None."""
    words = command.split()
    if (not words or not all(_PLAIN_WORD.fullmatch(w) for w in words)
            or "=" in words[0] or words[0].startswith("-") or words[0] in _SHELL_ONLY):
        return None
    return words


def shell_script(n: int, command: str, timeout: float, *, cwd: str | None, kill_after: float,
                 stream: bool = False, tag: str | None = None) -> str:
    """What the persistent shell is sent for command ``n`` (see :class:`_Shell`).

    ``stream``: the program still writes to its file (children it leaves behind cannot
    hold the channel open), and ``tail --pid`` follows that file while it runs, each line
    sent back as ``@@O <n> <line>``; a last line without newline gets one, so ``@@RC``
    always starts a line. ``tag``: the tag of the frame lines (default: a new one)."""
    inner = f"cd {shlex.quote(cwd)} && {command}" if cwd else command
    # A plain word list (no shell syntax, no cwd) is exec'd by timeout itself: one
    # program fewer than through ``sh -c``.
    words = None if cwd else _plain_words(command)
    prog = " ".join(shlex.quote(w) for w in words) if words else f"sh -c {shlex.quote(inner)}"
    # The shell's own files ($$: the persistent shell's pid, in subshells too), which
    # its next command overwrites: no rm per command.
    out, err = f"{_SCRATCH}/$$.out", f"{_SCRATCH}/$$.err"
    run = (f"( exec timeout -k {int(kill_after)} {int(max(1, timeout))} "
           f"{prog} ) </dev/null >{out} 2>{err}")
    if stream:
        run = (f": >{out}; {run} & p=$!; tail -s 0.2 -n +1 -f --pid=$p {out} "
               f"| sed -u 's/^/@@O {n} /'; wait $p; rc=$?; echo")
    else:
        run += "; rc=$?"
    # Few programs: each one costs ~50 ms under TCG on a loaded host, and every command
    # pays them (`[`, `echo` and here-documents are the shell's own).  One cat sends both
    # files back, each followed by a newline and a frame line from the here-document
    # between them (and an echo after): the host cuts at those lines (_frame_tag).
    tag = tag or _frame_tag(n)
    return (f"[ -d {_SCRATCH} ] || mkdir -p {_SCRATCH}; {run}; "
            f"echo \"@@RC {n} $rc\"; cat {out} - {err} <<'@@H'; echo; echo '@@F {tag}'\n"
            f"\n@@E {tag}\n@@H\n")


def _frame_tag(n: int) -> str:
    """The tag of command ``n``'s frame lines: its number and a random part, so that
    no output the command could have written by chance ends its frame."""
    return f"{n}.{secrets.token_hex(8)}"


#: Where streamed output lines go (see ``Guest.run``'s ``on_line``).
LineSink = Callable[[str], None]


def _call(sink: LineSink, line: str) -> None:
    try:
        sink(line)
    except Exception:  # progress must never break a run
        log.debug("ssh: on_line callback failed", exc_info=True)


class _LineSplitter:
    """Bytes in, complete lines out to ``sink`` (the last partial one at ``flush``)."""

    def __init__(self, sink: LineSink | None):
        self.sink = sink
        self.buf = b""

    def feed(self, data: bytes) -> None:
        if self.sink is None:
            return
        self.buf += data
        *done, self.buf = self.buf.split(b"\n")
        for l in done:
            _call(self.sink, l.decode("utf-8", "replace"))

    def flush(self) -> None:
        if self.sink is not None and self.buf:
            _call(self.sink, self.buf.decode("utf-8", "replace"))
        self.buf = b""


def _dec(chunks: list[bytes]) -> str:
    return b"".join(chunks).decode("utf-8", "replace")
