"""Where things live: the cache root, the project checkout, locks."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import time
from pathlib import Path
from typing import Iterator

from harness.errors import InfraError

log = logging.getLogger(__name__)


#: Locks this process holds (path -> depth), for re-entrancy.
_HELD: dict[str, int] = {}


def cache_root() -> Path:
    env = os.environ.get("RECHARGE_HARNESS_CACHE")
    if env:
        return Path(env).expanduser().absolute()
    return Path.home() / ".cache" / "recharge-harness"


def kbuild_lock(cache: Path) -> Path:
    """The lock every kernel build with this cache takes: one build at a time per cache.

    It lives in the cache (not in ``/tmp``), so two caches never wait for each other and
    a test with its own cache never waits for a real build."""
    return cache / "locks" / "kbuild.lock"


def project_root() -> Path:
    """The checkout holding ``kconfig/``, ``patches/`` and ``selftests/``."""
    env = os.environ.get("RECHARGE_HARNESS_PROJECT")
    if env:
        return Path(env).expanduser().absolute()
    here = Path(__file__).resolve().parents[1]
    if (here / "kconfig").is_dir():
        return here
    return Path.cwd()


@contextlib.contextmanager
def file_lock(path: Path, what: str, timeout_s: float = 4 * 3600.0) -> Iterator[None]:
    """Hold an exclusive ``flock(2)`` on ``path`` (same lock as ``flock(1)``).

    Says so once if someone else holds it, then waits up to ``timeout_s``.
    Re-entrant within this process (a nested ``file_lock`` on the same path is free).
    """
    key = str(path.absolute())
    if _HELD.get(key):
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            log.warning("waiting for %s (lock %s held by another process)", what, path)
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise InfraError(
                            f"gave up waiting {timeout_s:.0f}s for {what} ({path})") from None
                    time.sleep(1.0)
            log.info("got %s", what)
        _HELD[key] = 1
        try:
            yield
        finally:
            _HELD.pop(key, None)
    finally:
        os.close(fd)  # releases the lock


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_if_changed(path: Path, text: str) -> bool:
    """Write only when the content differs (keeps mtimes for make). True if written."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    atomic_write(path, text)
    return True
