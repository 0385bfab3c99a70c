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
  the threads work cuts off each guest's command in flight (the guest's ``abort()``,
  harness.stages.ssh.Guest.abort; after SIGTERM or SIGHUP it stops every guest
  instead: a SIGKILL may follow soon) and gives the threads :data:`WIND_UP_S` seconds
  to end their work (keep what finished, ask for the kernel log once more), then is
  raised; another one meanwhile, or threads still busy after that, stop every guest;
* an exception in the calling thread while the guests boot stops every guest it has
  started, booted or not (:attr:`Slot.vm` is known before QEMU starts), then the
  threads are waited for;
* what stopped the set (either kind of exception) is :attr:`GuestSet.stopped_by`,
  which the threads' work reads to start nothing more;
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

from harness.errors import HarnessError, is_termination, stop_reason
from harness.stages.boot import Booted
from harness.stages.suitetable import Suite
from harness.stages.vm import Vm

log = logging.getLogger(__name__)

T = TypeVar("T")

#: After the guests were stopped, how long the threads may take to notice.
JOIN_GRACE_S = 60.0
#: After an interrupt cut off the guests' commands, how long the threads may take to end
#: their work before the guests are stopped under them (their brief dmesg: 20 s).
WIND_UP_S = 30.0


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

    def __init__(self, slots: list[Slot], boot: BootFn, *, join_grace_s: float = JOIN_GRACE_S,
                 wind_up_s: float = WIND_UP_S):
        self.slots = slots
        self._boot = boot
        self._grace = join_grace_s
        self._wind_up_s = wind_up_s
        #: what stopped the set (Ctrl-C in the calling thread, an exception in a thread)
        self.stopped_by: BaseException | None = None
        self._stack = contextlib.ExitStack()
        self._lock = threading.Lock()
        self._closed = False
        self._running: list[_Worker] = []

    def __enter__(self) -> GuestSet:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if any(w.began.is_set() and not w.done.is_set() for w in self._running):
                log.warning("stopping %d guests: %s", len(self.slots),
                            exc_type.__name__ if exc_type else "threads still running")
                self.stop_all(exc)
                self._join(self._running, time.monotonic() + self._grace)
        finally:
            with self._lock:
                self._closed = True
            self._stack.close()

    @property
    def up(self) -> list[Slot]:
        """The slots whose guest booted."""
        return [s for s in self.slots if s.booted is not None]

    def stop_all(self, why: BaseException | None = None) -> None:
        """Stop every guest started so far, at once (the threads' SSH waits then end);
        ``why`` becomes :attr:`stopped_by` unless something stopped the set before."""
        if why is not None and self.stopped_by is None:
            self.stopped_by = why
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
        """``work(slot)`` for every booted slot at once; slot index -> its result.

        Ctrl-C (any exception) here while they work: see the module doc; ``work`` should
        then start nothing more once :attr:`stopped_by` is set."""
        return self._threads({s.index: functools.partial(work, s) for s in self.up},
                             wind_up=True)

    def _threads(self, calls: dict[int, Callable[[], Any]],
                 failures: tuple[type[BaseException], ...] = (),
                 wind_up: bool = False) -> dict[int, Any]:
        """Run ``calls`` in threads and wait.  An exception of one of ``failures`` is that
        call's result; any other stops every guest and is raised here once all ended.
        ``wind_up``: an exception here while waiting cuts the guests' commands off first
        (:meth:`_wind_up`)."""
        results: dict[int, Any] = {}
        errors: list[BaseException] = []

        def run(key: int, call: Callable[[], Any], w: _Worker) -> None:
            w.began.set()
            try:
                results[key] = call()
            except failures as e:
                results[key] = e
            except BaseException as e:  # handed to the calling thread
                log.debug("guest thread %d failed", key, exc_info=True)
                errors.append(e)
                self.stop_all(e)
            finally:
                w.done.set()

        workers = [_Worker(f"guest-{k}") for k in calls]
        self._running = workers
        try:
            for w, (k, c) in zip(workers, calls.items()):
                threading.Thread(target=run, args=(k, c, w), name=w.name, daemon=True).start()
            self._join(workers, None)
        except BaseException as e:  # Ctrl-C, SIGTERM: they arrive in this thread
            if wind_up:
                self._wind_up(workers, e)
            raise
        if errors:
            raise errors[0]
        return results

    def _wind_up(self, workers: list[_Worker], why: BaseException) -> None:
        """Stopped by ``why`` while the threads work: cut off each guest's command in
        flight (its SSH wait ends, the guest stays up; after SIGTERM or SIGHUP every guest
        is stopped instead), and wait up to :data:`WIND_UP_S` for the threads to end
        their work, which then starts nothing more (:attr:`stopped_by`) and may still use
        its guest briefly (dmesg).  Another exception meanwhile goes on at once
        (``__exit__`` then stops the guests)."""
        if is_termination(why):
            log.warning("%s: stopping %d guests", stop_reason(why), len(self.slots))
            self.stop_all(why)
            self._join(workers, time.monotonic() + self._wind_up_s, warn=False)
            return
        if self.stopped_by is None:
            self.stopped_by = why
        log.warning("%s: cutting off the guests' commands (the threads get %.0fs to end)",
                    stop_reason(why), self._wind_up_s)
        for s in self.up:
            abort = getattr(s.booted.guest, "abort", None) if s.booted is not None else None
            if abort is None:
                continue
            try:
                abort()
            except Exception:  # a guest whose connection is already gone
                log.debug("%s: abort failed", s.name, exc_info=True)
        self._join(workers, time.monotonic() + self._wind_up_s, warn=False)

    @staticmethod
    def _join(workers: list[_Worker], deadline: float | None, warn: bool = True) -> None:
        for w in workers:
            if not w.began.wait(BEGIN_WAIT_S):
                continue  # Ctrl-C cut its start short: it never ran
            while not w.done.is_set() and (deadline is None or time.monotonic() < deadline):
                w.done.wait(0.2)
            if warn and not w.done.is_set():
                log.warning("%s did not end in time: left behind", w.name)


#: How long a thread just started may take to begin its work.
BEGIN_WAIT_S = 1.0


@dataclass(frozen=True)
class _Worker:
    """A thread of :meth:`GuestSet._threads`: set ``began`` first, ``done`` when its work
    has ended.

    Waited for with these events, not ``Thread.join``/``is_alive``: a join that Ctrl-C
    interrupts can mark a thread that still runs as ended (CPython 3.11's
    ``Thread._wait_for_tstate_lock``), and Ctrl-C may come while the threads start."""

    name: str
    began: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
