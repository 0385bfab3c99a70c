"""``--parallel N``: the boot, guest-setup and suites stages of a run on N guests at once.

With N = 1 (``--parallel 1``, or a single suite) :class:`harness.modes.run.Pipeline`
boots its one guest as it always has.  With N > 1 this module does instead: the
selected suites are shared out longest first (:mod:`harness.stages.schedule`), N
guests of the same kernel boot together (:mod:`harness.stages.guests`), each in
``guest-K/`` of the run directory (``vm/`` with its console, vng command, scratch
disks and SSH keys; ``guest-setup.log``; ``dmesg.log``), and each runs its share one
suite after the other while the others run theirs.  The stages, ``junit.xml``,
``summary.txt`` and the verdict are those of a single guest: the runs are put back
in the selection's order, and the kernel logs of every guest are scanned
(harness.report.kernellog), each finding naming its guest.

The run record adds ``schedule`` (the shares and the expected durations they were
made from), ``vm.guests`` (each guest's port and boot timings; ``vm``'s own are
the first guest's) and each suite's ``guest`` in ``results.suites``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError, is_interrupt
from harness.model import Status, SuiteRun
from harness.stages import accel as accelmod
from harness.stages import boot as bootmod
from harness.stages import inventory, schedule, widenet
from harness.stages import suites as suitesmod
from harness.stages import vm as vmmod
from harness.stages.guests import GuestSet, Slot
from harness.stages.suitetable import Suite
from harness.stages.vm import Vm

if TYPE_CHECKING:  # pragma: no cover - the pipeline calls this module
    from harness.modes.run import Pipeline

log = logging.getLogger(__name__)

#: The commands whose suites may run on several guests.
COMMANDS = ("run", "test")
#: The options that change how long a suite runs (harness.stages.schedule).
DURATION_OPTIONS = ("cases", "stress_s", "soak_s")


def guests_for(p: Pipeline, selected: list[Suite]) -> int:
    """How many guests the run boots (``--parallel``, or the default)."""
    o = p.o
    if o.command not in COMMANDS or not p.wants("suites"):
        return 1
    n, why = schedule.resolve_parallel(o.parallel, len(selected), o.memory)
    if n > 1 or "memory" in why:
        log.info("parallel: %d guest%s (%s)", n, "s" if n > 1 else "", why)
    p.meta.update("schedule", {"parallel": n, "why": why})
    return n


def boot_and_test(p: Pipeline, selected: list[Suite], n: int) -> None:
    """Stages ``boot``, ``guest-setup`` and ``suites`` on ``n`` guests (module doc)."""
    o = p.o
    selected = widenet.with_soak_seconds(suitesmod.with_stress_seconds(selected, o.stress_s),
                                         o.soak_s)
    recorded, source = schedule.recorded_durations(
        o.out, p.run_dir, [s.name for s in selected],
        {k: getattr(o, k) for k in DURATION_OPTIONS})
    plan = schedule.plan(selected, n, recorded, source)
    p.meta.update("schedule", plan.facts())
    slots = [Slot(i, p.path(f"guest-{i}"), list(share)) for i, share in enumerate(plan.guests, 1)]
    p.ctx.guests, p.ctx.guest_of = [s.name for s in slots], plan.guest_of()
    for s in slots:
        log.info("parallel: %s runs %s (about %.0fs)", s.name, ", ".join(x.name for x in s.suites),
                 sum(plan.expected_s[x.name] for x in s.suites))
    # SIGTERM/SIGHUP raise here, in the thread that stops the guests (harness.stages.boot).
    with bootmod.signals_raise(), GuestSet(slots, functools.partial(_boot, p)) as gs:
        stop: BaseException | None = None
        try:
            _boot_stage(p, gs)
            _setup_stage(p, gs)
            _suites_stage(p, gs, selected)
        except BaseException as e:
            stop = e
            raise
        finally:
            # --keep-vm-on-failure: after a stage error, never after Ctrl-C or SIGTERM
            failed = any(s.status == Status.ERROR for s in p.stages)
            keep = failed and o.keep_vm_on_failure and not (stop is not None and is_interrupt(stop))
            for s in gs.up:
                assert s.booted is not None
                s.booted.keep = keep and s.booted.vm.alive()


def _boot(p: Pipeline, slot: Slot,
          on_vm: Callable[[Vm], None]) -> AbstractContextManager[bootmod.Booted]:
    o, c = p.o, p.ctx
    assert c.bzimage is not None
    # The guest's own lifetime bound: enough for its share of the suites.
    budget = min(o.budget_s, sum(s.timeout_s for s in slot.suites) + 900)
    return bootmod.boot(c.bzimage, slot.workdir / "vm", bootmod.BootSpec.from_options(o, budget),
                        o.cache, guest_factory=p.guest_factory, accel=c.accel, on_vm=on_vm)


def _timings(b: bootmod.Booted) -> dict[str, Any]:
    return {"port": b.vm.port, "boot_to_ssh_s": round(b.boot_to_ssh_s, 1),
            "boot_to_shell_s": round(b.boot_to_shell_s, 1),
            "first_command_s": b.first_command_s, "guest_ready_s": b.guest_ready_s,
            "ssh_wait_s": round(b.ssh_wait_s, 1)}


def _boot_stage(p: Pipeline, gs: GuestSet) -> None:
    o, c = p.o, p.ctx
    assert c.bzimage is not None
    with p.stage("boot", "guest-1/vm/console.log") as st:
        # One accelerator for all (a KVM probe, if any, boots once).
        choice = accelmod.choose_accel(o.accel, c.bzimage, o.cache, gs.slots[0].workdir / "vm")
        log.info("vm: accelerator %s: %s", choice.accel.upper(), choice.reason)
        p._on_accel(choice)
        vmmod.virtiofsd_available()  # probed once, before the threads ask (it is cached)
        gs.boot_all()
        up, down = gs.up, [s for s in gs.slots if s.error is not None]
        if not up:
            assert down and down[0].error is not None
            raise down[0].error
        guests: dict[str, Any] = {}
        for s in gs.slots:
            guests[s.name] = ({**_timings(s.booted), "suites": [x.name for x in s.suites]}
                              if s.booted else {"error": _describe(s.error),
                                                "suites": [x.name for x in s.suites]})
        first = up[0].booted
        assert first is not None
        p.meta.update("vm", {**_timings(first), "parallel": len(gs.slots), "guests": guests})
        st["detail"] = (f"{len(up)} of {len(gs.slots)} {choice.accel.upper()} guests up: "
                        + ", ".join(f"{s.name} SSH after {s.booted.boot_to_ssh_s:.1f}s "
                                    f"(port {s.booted.vm.port})" for s in up if s.booted))
        if down:
            st["status"] = "ERROR"
            st["detail"] += "; " + "; ".join(f"{s.name} did not boot: {_describe(s.error)}"
                                             for s in down)


def _describe(e: BaseException | None) -> str:
    return e.describe() if isinstance(e, HarnessError) else f"{type(e).__name__}: {e}"


def _setup_stage(p: Pipeline, gs: GuestSet) -> None:
    o = p.o

    def setup(s: Slot) -> bootmod.SetupResult:
        assert s.booted is not None
        return bootmod.guest_setup(s.booted.guest, o.project, s.workdir / "guest-setup.log")

    with p.stage("guest-setup", "guest-1/guest-setup.log") as st:
        results = gs.each(setup)
        first = results[gs.up[0].index]
        if first.exit_code is not None:
            p.meta.update("guest", first.facts)
        bad = [(s, results[s.index]) for s in gs.up if not results[s.index].ok]
        st["status"] = "ERROR" if bad else "PASS"
        st["detail"] = ("; ".join(f"{s.name}: {r.detail}" for s, r in bad) if bad else
                        f"{first.detail} on each of {len(results)} guests")


def _suites_stage(p: Pipeline, gs: GuestSet, selected: list[Suite]) -> None:
    c = p.ctx
    if not p.wants("suites"):
        return
    with p.stage("suites") as st:
        p.meta.update("inventory", {"suites": inventory.record(selected, c.feature)})
        # Each guest's runs, filled as each suite ends: an interrupt keeps what finished.
        shares: dict[int, list[SuiteRun]] = {s.index: [] for s in gs.up}
        try:
            gs.each(functools.partial(_run_share, p, gs, shares))
        finally:
            c.runs = _gather(gs, selected, shares, c.feature)
            p.meta.suites(c.runs, c.guest_of)
        counts: dict[str, int] = {}
        for r in c.runs:
            counts[r.status.name] = counts.get(r.status.name, 0) + 1
        st["detail"] = (", ".join(f"{v} {k.lower()}" for k, v in counts.items())
                        + f" on {len(gs.slots)} guests")


def _gather(gs: GuestSet, selected: list[Suite], shares: dict[int, list[SuiteRun]],
            feature: bool | None) -> list[SuiteRun]:
    """The runs of every guest in the selection's order (those of a guest that did not
    boot: ERROR); a suite no guest got to is missing (the pipeline adds it as NOTRUN)."""
    runs: dict[str, SuiteRun] = {}
    for s in gs.slots:
        if s.booted is not None:
            runs.update((r.name, r) for r in list(shares.get(s.index, [])))
            continue
        why = f"not run: {s.name} did not boot: {_describe(s.error)}"
        runs.update((x.name, inventory.check(x, suitesmod.not_run(x, why, Status.ERROR),
                                             feature)) for x in s.suites)
    return [runs[s.name] for s in selected if s.name in runs]


def _run_share(p: Pipeline, gs: GuestSet, shares: dict[int, list[SuiteRun]],
               slot: Slot) -> list[SuiteRun]:
    """One guest's suites, one after the other (until the set is stopped); then its dmesg
    (briefly, if the set is stopping)."""
    c = p.ctx
    b = slot.booted
    assert b is not None
    runs = suitesmod.run_suites(b.guest, slot.suites, c.guest_dirs, p.path("ktap"),
                                alive=b.vm.alive, feature=c.feature, into=shares[slot.index],
                                stopped=lambda: gs.stopped_by)
    log.info("parallel: %s done: %d suite(s) in %.0fs", slot.name, len(runs),
             sum(r.duration_s for r in runs))
    bootmod.collect_dmesg(b.guest, b.vm, slot.workdir / "dmesg.log",
                          brief=gs.stopped_by is not None)
    return runs
