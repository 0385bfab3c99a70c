"""Several guests of one kernel at once (``--parallel N``), each in a thread of its own.

A :class:`GuestSet` boots its :class:`Slot` s together (:func:`harness.stages.boot.boot`,
each with its own directory: console, vng command, scratch disks, SSH keys and port),
then runs work on every booted guest at once (:meth:`GuestSet.each`), and stops them
all when its ``with`` block ends.  The work is I/O: each thread waits on its guest's
SSH session while the guest (a QEMU process) computes.

Cleanup, whatever happens:

* a guest that fails to boot keeps its error (:attr:`Slot.error`); the others go on;
* an exception in a thread's work (not a test outcome: a bug, a full disk) stops every
  guest, so that the other threads' SSH waits end at once, and is raised in the
  calling thread once they have ended;
* an exception in the calling thread (Ctrl-C, SIGTERM: signals arrive there) while
  the threads work or boot stops every guest it has started, booted or not
  (:attr:`Slot.vm` is known before QEMU starts), then the threads are waited for;
* leaving the block stops the guests in the ordinary way (``boot()``'s own exit:
  SSH closed, QEMU's session killed, scratch images removed; a guest marked
  ``keep`` is left running).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ContextManager, TypeVar

from harness.errors import HarnessError
from harness.stages.boot import Booted
from harness.stages.suitetable import Suite
from harness.stages.vm import Vm

log = logging.getLogger(__name__)

T = TypeVar("T")

#: After the guests were stopped, how long the threads may take to notice.
JOIN_GRACE_S = 60.0


@dataclass
class Slot:
    """One guest of a set: its directory, its suites, and what became of it."""

    index: int  # 1-based
    workdir: Path  # guest-K/ (vm/, guest-setup.log, dmesg.log)
    suites: list[Suite] = field(default_factory=list)
    vm: Vm | None = None  # from before QEMU starts
    booted: Booted | None = None
    error: BaseException | None = None  # why it did not boot

    @property
    def name(self) -> str:
        return f"guest-{self.index}"


#: How a slot's guest is booted: ``boot(slot, on_vm)`` -> the context manager of
#: :func:`harness.stages.boot.boot` (``on_vm`` goes to its ``on_vm``).
BootFn = Callable[[Slot, Callable[[Vm], None]], ContextManager[Booted]]


class GuestSet:
    """See the module's doc."""

    def __init__(self, slots: list[Slot], boot: BootFn, *, join_grace_s: float = JOIN_GRACE_S):
        self.slots = slots
        self._boot = boot
        self._grace = join_grace_s
        self._stack = contextlib.ExitStack()
        self._lock = threading.Lock()
        self._closed = False
        self._running: list[threading.Thread] = []

    def __enter__(self) -> GuestSet:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if any(t.is_alive() for t in self._running):
                log.warning("stopping %d guests: %s", len(self.slots),
                            exc_type.__name__ if exc_type else "threads still running")
                self.stop_all()
                self._join(self._running, time.monotonic() + self._grace)
        finally:
            with self._lock:
                self._closed = True
            self._stack.close()

    @property
    def up(self) -> list[Slot]:
        """The slots whose guest booted."""
        return [s for s in self.slots if s.booted is not None]

    def stop_all(self) -> None:
        """Stop every guest started so far, at once (the threads' SSH waits then end)."""
        for s in self.slots:
            if s.vm is not None:
                s.vm.stop()

    # ------------------------------------------------------------------ boot --

    def boot_all(self) -> None:
        """Boot every slot at once; a slot that fails keeps its error in ``error``."""
        results = self._threads({s.index: functools.partial(self._boot_one, s) for s in self.slots},
                                failures=(HarnessError,))
        for s in self.slots:
            err = results.get(s.index)
            if isinstance(err, BaseException):
                s.error = err
                log.error("%s: %s", s.name, err.describe() if isinstance(err, HarnessError)
                          else err)

    def _boot_one(self, slot: Slot) -> None:
        def on_vm(vm: Vm) -> None:
            slot.vm = vm

        cm = self._boot(slot, on_vm)
        booted = cm.__enter__()
        with self._lock:
            if not self._closed:
                self._stack.push(cm.__exit__)
                slot.booted = booted
                return
        cm.__exit__(None, None, None)  # the set ended while this guest booted

    # ------------------------------------------------------------------ work --

    def each(self, work: Callable[[Slot], T]) -> dict[int, T]:
        """``work(slot)`` for every booted slot at once; slot index -> its result."""
        return self._threads({s.index: functools.partial(work, s) for s in self.up})

    def _threads(self, calls: dict[int, Callable[[], Any]],
                 failures: tuple[type[BaseException], ...] = ()) -> dict[int, Any]:
        """Run ``calls`` in threads and wait.  An exception of one of ``failures`` is that
        call's result; any other stops every guest and is raised here once all ended."""
        results: dict[int, Any] = {}
        errors: list[BaseException] = []

        def run(key: int, call: Callable[[], Any]) -> None:
            try:
                results[key] = call()
            except failures as e:
                results[key] = e
            except BaseException as e:  # handed to the calling thread
                log.debug("guest thread %d failed", key, exc_info=True)
                errors.append(e)
                self.stop_all()

        threads = [threading.Thread(target=run, args=(k, c), name=f"guest-{k}", daemon=True)
                   for k, c in calls.items()]
        self._running = threads
        for t in threads:
            t.start()
        self._join(threads, None)
        if errors:
            raise errors[0]
        return results

    @staticmethod
    def _join(threads: list[threading.Thread], deadline: float | None) -> None:
        for t in threads:
            while t.is_alive() and (deadline is None or time.monotonic() < deadline):
                t.join(0.2)
            if t.is_alive():
                log.warning("%s did not end in time: left behind", t.name)
