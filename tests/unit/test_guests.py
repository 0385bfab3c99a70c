"""GuestSet (harness.stages.guests) on its own, with stand-in guests: Ctrl-C while the
threads work cuts off the guests' commands, lets the threads end their work, then stops
the guests; threads that do not end are stopped under them."""

from __future__ import annotations

import _thread
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.stages.guests import GuestSet, Slot


class _Vm:
    def __init__(self) -> None:
        self.stopped = threading.Event()

    def stop(self) -> None:
        self.stopped.set()

    def alive(self) -> bool:
        return not self.stopped.is_set()


class _Guest:
    """A guest whose command runs until ``abort()`` (if it has one) or its VM stops."""

    def __init__(self, vm: _Vm, abort: str | None):
        self.vm = vm
        self.cut = threading.Event()
        if abort == "works":
            self.abort = self.cut.set
        elif abort == "fails":
            def broken() -> None:
                raise OSError("connection already gone")
            self.abort = broken

    def run(self, limit: float = 20.0) -> str:
        end = time.monotonic() + limit
        while time.monotonic() < end:
            if self.cut.is_set():
                return "cut off"
            if self.vm.stopped.is_set():
                return "connection lost"
            time.sleep(0.01)
        return "ran out"


def _set(tmp_path: Path, aborts: list[str | None], **kw: float) -> GuestSet:
    slots = [Slot(i, tmp_path / f"guest-{i}") for i in range(1, len(aborts) + 1)]

    def boot(slot: Slot, on_vm: Any) -> contextlib.AbstractContextManager[Any]:
        @contextlib.contextmanager
        def cm() -> Iterator[Any]:
            vm = _Vm()
            on_vm(vm)
            try:
                yield SimpleNamespace(vm=vm, guest=_Guest(vm, aborts[slot.index - 1]))
            finally:
                vm.stop()
        return cm()

    return GuestSet(slots, boot, **kw)


def test_ctrl_c_cuts_off_the_commands_and_lets_the_threads_finish(tmp_path: Path) -> None:
    """Guest 1 can be cut off, guest 2's abort fails, guest 3 has none: each thread still
    ends its work (1 at once, 2 and 3 when their guests stop), nothing is left behind."""
    gs = _set(tmp_path, ["works", "fails", None], wind_up_s=0.5, join_grace_s=10)
    ended: dict[int, tuple[str, str]] = {}
    started = threading.Barrier(4)

    def work(slot: Slot) -> None:
        g = slot.booted.guest  # type: ignore[union-attr]
        started.wait(5)
        got = g.run()
        # what the work sees once its command ended: why the set stopped
        ended[slot.index] = (got, type(gs.stopped_by).__name__)

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt), gs:
        gs.boot_all()
        assert len(gs.up) == 3
        threading.Timer(0.1, lambda: (started.wait(5), _thread.interrupt_main())).start()
        gs.each(work)
    assert time.monotonic() - start < 8
    assert ended[1] == ("cut off", "KeyboardInterrupt")  # during the wind-up, guest still up
    assert ended[2] == ended[3] == ("connection lost", "KeyboardInterrupt")
    assert all(s.vm is not None and s.vm.stopped.is_set() for s in gs.slots)


def test_ctrl_c_while_every_command_can_be_cut_off_stops_no_guest_early(tmp_path: Path) -> None:
    gs = _set(tmp_path, ["works", "works"], wind_up_s=10)
    seen: dict[int, bool] = {}
    both = threading.Barrier(2)

    def work(slot: Slot) -> None:
        assert slot.booted is not None
        both.wait(5)
        if slot.index == 1:
            _thread.interrupt_main()
        slot.booted.guest.run()
        time.sleep(0.05)  # e.g. the kernel log, from a guest still up
        seen[slot.index] = slot.booted.vm.alive()

    with pytest.raises(KeyboardInterrupt), gs:
        gs.boot_all()
        gs.each(work)
    assert seen == {1: True, 2: True}
