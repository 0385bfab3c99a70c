"""Run commands: argv lists only, always a cwd and a timeout, output teed to a log.

Every child starts in a new session (``start_new_session=True``).  On timeout,
SIGINT, SIGTERM or any exception the *whole session* is killed: first the
process group, then every process whose session id is still the child's
(QEMU and virtiofsd started in the background by vng included).
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Mapping, Sequence

from harness.errors import CommandTimeout, InfraError

log = logging.getLogger(__name__)

#: session ids of children still alive; killed by :func:`kill_all` on exit.
_LIVE: set[int] = set()
_LIVE_LOCK = threading.Lock()

TAIL_LINES = 200


@dataclass(frozen=True)
class ProcResult:
    argv: tuple[str, ...]
    cwd: Path
    returncode: int
    duration_s: float
    output: str  # stdout (+ stderr when merged); "" when capture=False
    stderr: str  # only when merge_stderr=False
    tail: tuple[str, ...]  # last lines of the combined output

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _session_members(sid: int) -> list[int]:
    """PIDs whose session id is ``sid`` (read from /proc/<pid>/stat)."""
    pids: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:  # pragma: no cover - no procfs
        return pids
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...; comm may contain spaces/parens.
        # Zombies are dead already (they only wait to be reaped): skip them.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 3 and fields[3] == str(sid) and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def kill_session(sid: int, grace_s: float = 5.0) -> None:
    """SIGTERM then SIGKILL the process group ``sid`` and anything left in session ``sid``."""
    deadline = time.monotonic() + grace_s
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(sid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in _session_members(sid):
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        if sig == signal.SIGKILL:
            break
        while time.monotonic() < deadline:
            if not _session_members(sid):
                return
            time.sleep(0.1)
    # Give the kernel a moment to reap the SIGKILLed ones.
    end = time.monotonic() + 2.0
    while _session_members(sid) and time.monotonic() < end:
        time.sleep(0.05)


def _register(sid: int) -> None:
    with _LIVE_LOCK:
        _LIVE.add(sid)


def _unregister(sid: int) -> None:
    with _LIVE_LOCK:
        _LIVE.discard(sid)


def kill_all() -> None:
    """Kill every session still registered (called from the CLI's finally)."""
    with _LIVE_LOCK:
        sids = list(_LIVE)
    for sid in sids:
        kill_session(sid, grace_s=3.0)
        _unregister(sid)


def _reader(
    stream: IO[bytes],
    sink: list[str] | None,
    tail: collections.deque[str],
    logf: IO[str] | None,
    lock: threading.Lock,
    on_line: Callable[[str], None] | None,
) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace")
        with lock:
            if logf is not None:
                logf.write(line)
                logf.flush()
            tail.append(line.rstrip("\n"))
        if sink is not None:
            sink.append(line)
        if on_line is not None:
            try:
                on_line(line.rstrip("\n"))
            except Exception:  # a progress callback must never break the run
                log.debug("on_line callback failed", exc_info=True)
    stream.close()


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path,
    timeout: float,
    log_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    on_tick: Callable[[], None] | None = None,
    capture: bool = True,
    merge_stderr: bool = True,
    stdin_data: bytes | None = None,
    log_mode: str = "a",
    stop_grace_s: float = 5.0,
) -> ProcResult:
    """Run ``argv`` in ``cwd`` and wait at most ``timeout`` seconds.

    Output is teed to ``log_path`` (appended, preceded by the command line).
    Raises :class:`CommandTimeout` after killing the session on timeout, and
    re-raises whatever interrupted the wait (SIGINT/SIGTERM) after killing it:
    SIGTERM first, SIGKILL after ``stop_grace_s`` (a child that cleans up after
    itself, such as a nested harness run stopping its VM, needs longer).
    A non-zero exit status is *returned*, not raised.
    """
    args = tuple(os.fspath(a) for a in argv)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    logf = _open_log(log_path, log_mode, cwd, args)
    start = time.monotonic()
    proc = _spawn(args, cwd, full_env, logf, stdin=stdin_data is not None,
                  merge_stderr=merge_stderr)
    _register(proc.pid)
    out: list[str] | None = [] if capture else None
    err: list[str] | None = [] if (capture and not merge_stderr) else None
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    threads = _start_readers(proc, out, err, tail, logf, on_line)
    try:
        _feed_stdin(proc, stdin_data)
        _wait(proc, args, timeout, start + timeout, on_tick, log_path)
        # The child is gone, but children it left behind would keep the pipes open.
        kill_session(proc.pid, grace_s=1.0)
        for t in threads:
            t.join(timeout=5.0)
    except BaseException:
        kill_session(proc.pid, grace_s=stop_grace_s)
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        raise
    finally:
        _unregister(proc.pid)
        if logf is not None:
            logf.write(f"[exit {proc.returncode} after {time.monotonic() - start:.1f}s]\n")
            logf.close()
    return ProcResult(
        argv=args,
        cwd=cwd,
        returncode=proc.returncode,
        duration_s=time.monotonic() - start,
        output="".join(out) if out is not None else "",
        stderr="".join(err) if err is not None else "",
        tail=tuple(tail),
    )


def _open_log(log_path: Path | None, mode: str, cwd: Path, args: tuple[str, ...]) -> IO[str] | None:
    """The log file of :func:`run`, opened and headed by the command line."""
    if log_path is None:
        return None
    log_path.parent.mkdir(parents=True, exist_ok=True)
    logf = open(log_path, mode, encoding="utf-8")
    logf.write(f"$ cd {cwd} && {' '.join(args)}\n")
    logf.flush()
    return logf


def _spawn(args: tuple[str, ...], cwd: Path, env: dict[str, str], logf: IO[str] | None, *,
           stdin: bool, merge_stderr: bool) -> subprocess.Popen[bytes]:
    """Start the child in a new session; InfraError (log closed) if it cannot start."""
    try:
        return subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError as e:
        if logf:
            logf.close()
        raise InfraError(f"command not found: {args[0]}") from e
    except OSError as e:
        if logf:
            logf.close()
        raise InfraError(f"cannot run {args[0]}: {e.strerror}") from e


def _start_readers(
    proc: subprocess.Popen[bytes],
    out: list[str] | None,
    err: list[str] | None,
    tail: collections.deque[str],
    logf: IO[str] | None,
    on_line: Callable[[str], None] | None,
) -> list[threading.Thread]:
    """One :func:`_reader` thread for stdout, and one for stderr unless it is merged."""
    lock = threading.Lock()
    assert proc.stdout is not None
    threads = [
        threading.Thread(
            target=_reader, args=(proc.stdout, out, tail, logf, lock, on_line), daemon=True
        )
    ]
    if proc.stderr is not None:
        threads.append(
            threading.Thread(
                target=_reader, args=(proc.stderr, err, tail, logf, lock, None), daemon=True
            )
        )
    for t in threads:
        t.start()
    return threads


def _feed_stdin(proc: subprocess.Popen[bytes], data: bytes | None) -> None:
    if data is None:
        return
    assert proc.stdin is not None
    try:
        proc.stdin.write(data)
        proc.stdin.close()
    except BrokenPipeError:
        pass


def _wait(proc: subprocess.Popen[bytes], args: tuple[str, ...], timeout: float,
          deadline: float, on_tick: Callable[[], None] | None, log_path: Path | None) -> None:
    """Wait for the child until ``deadline``, calling ``on_tick`` about every second;
    on timeout kill its session and raise :class:`CommandTimeout`."""
    while True:
        try:
            proc.wait(timeout=min(1.0, max(0.01, deadline - time.monotonic())))
            return
        except subprocess.TimeoutExpired:
            if on_tick is not None:
                on_tick()
            if time.monotonic() >= deadline:
                kill_session(proc.pid)
                proc.wait()
                raise CommandTimeout(  # noqa: B904 - the timeout is the cause, not an error
                    f"{os.path.basename(args[0])} timed out after {timeout:.0f}s "
                    f"(process group killed): {' '.join(args)[:200]}",
                    log=log_path,
                )


class Background:
    """A long-lived child (the VM) in its own session, output to files.

    Use as a context manager: leaving the block kills the whole session.
    """

    def __init__(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        cwd: Path,
        stdout_path: Path,
        stderr_path: Path,
        env: Mapping[str, str] | None = None,
    ):
        self.argv = tuple(os.fspath(a) for a in argv)
        self.cwd = cwd
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        stdout_path.parent.mkdir(parents=True, exist_ok=True)
        self._out = open(stdout_path, "wb")
        self._err = open(stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=cwd,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=self._out,
                stderr=self._err,
                start_new_session=True,
            )
        except OSError as e:
            self._out.close()
            self._err.close()
            raise InfraError(f"cannot run {self.argv[0]}: {e.strerror}") from e
        _register(self.proc.pid)
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def alive(self) -> bool:
        """True while vng runs or anything of its session (QEMU) is left."""
        return self.proc.poll() is None

    def stop(self, grace_s: float = 5.0) -> int | None:
        """Kill the whole session; idempotent.  Returns vng's exit status if known."""
        kill_session(self.proc.pid, grace_s=grace_s)
        try:
            self.proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        _unregister(self.proc.pid)
        for f in (self._out, self._err):
            if not f.closed:
                f.close()
        return self.proc.returncode

    def __enter__(self) -> "Background":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
