"""Stage 6: talk to the guest over SSH (paramiko).

The guest's sshd listens on 127.0.0.1:PORT only (QEMU user networking).  We log
in as root with the per-run key vng generated in the run's private HOME, and
we *verify* the guest's host key against the per-run host keys vng generated
next to it (no trust-on-first-use, no known_hosts file touched).
"""

from __future__ import annotations

import base64
import logging
import shlex
import socket
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

    def connect(self, deadline_s: float, alive: Callable[[], bool] | None = None) -> float:
        """Retry with back-off until sshd answers; return seconds waited.

        Raises :class:`SshError` at the deadline or as soon as ``alive()`` says
        the guest is gone.
        """
        start = time.monotonic()
        delay = 0.5
        last = "no attempt"
        while True:
            if alive is not None and not alive():
                raise SshError(f"guest exited while waiting for SSH (last: {last})")
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
            kill_after: float = 10.0) -> CmdResult:
        """Run ``command`` (a shell string) with a guest-side ``timeout`` and a host deadline.

        Exit code 124 from coreutils ``timeout`` is reported as ``timed_out``.
        """
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
        try:
            transport = self.client.get_transport()
            if transport is None:
                raise SshError("SSH transport closed")
            chan = transport.open_session()
            chan.settimeout(1.0)
            chan.exec_command(wrapped)
            deadline = start + timeout + kill_after + 15
            while True:
                got = False
                if chan.recv_ready():
                    out.append(chan.recv(65536))
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
                                     f"no exit status after {timeout:.0f}s")
                if chan.closed and not chan.exit_status_ready():
                    return CmdResult(command, None, _dec(out), _dec(err),
                                     time.monotonic() - start, False, "channel closed")
                if not got:
                    time.sleep(0.05)
            code = chan.recv_exit_status()
            chan.close()
        except (paramiko.SSHException, OSError, EOFError, socket.timeout) as e:
            return CmdResult(command, None, _dec(out), _dec(err), time.monotonic() - start,
                             False, f"connection lost: {type(e).__name__}: {e}"[:200])
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
        if self.client is not None:
            self.client.close()
            self.client = None

    def __enter__(self) -> "Guest":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _dec(chunks: list[bytes]) -> str:
    return b"".join(chunks).decode("utf-8", "replace")
