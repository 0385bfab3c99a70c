"""Where a bench run's time goes: harness logs, console timestamps, build products, make.

Pure readers of what a child run left (``harness.log``, ``vm/console.log``,
``build.log``, the mtimes in its build directory) and :func:`timed_make`, a ``make``
with a timestamp on every output line.
"""

from __future__ import annotations

import datetime as dt
import re
import resource
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness import proc
from harness.modes.bench.records import ChildSummary, MakeTiming, StageTime
from harness.modes.child import ChildRun
from harness.parse import buildlog

# ------------------------------------------------------------- small parsers --

_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S (\S+): (.*)$")
_CONSOLE = re.compile(r"^\[\s*(\d+\.\d+)\] (.*)$")


def log_time(stamp: str) -> float:
    """``2026-11-26 10:39:19,123`` (logging's asctime, local time) -> epoch seconds."""
    return dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def harness_log_events(text: str) -> list[tuple[float, str]]:
    """(epoch seconds, message) of every line of a run's ``harness.log``."""
    out = []
    for line in text.splitlines():
        m = _LOG_TIME.match(line)
        if m:
            try:
                out.append((log_time(m.group(1)), m.group(3)))
            except ValueError:
                continue
    return out


def lock_waits(events: list[tuple[float, str]]) -> dict[str, float]:
    """Seconds spent waiting for each lock ("waiting for X (lock ...)" ... "got X")."""
    waits: dict[str, float] = {}
    pending: dict[str, float] = {}
    for t, msg in events:
        m = re.match(r"waiting for (.+?) \(lock .*\)$", msg)
        if m:
            pending[m.group(1)] = t
            continue
        m = re.match(r"got (.+)$", msg)
        if m and m.group(1) in pending:
            what = m.group(1)
            waits[what] = waits.get(what, 0.0) + t - pending.pop(what)
    return {k: round(v, 2) for k, v in waits.items()}


def stage_start(events: list[tuple[float, str]], stage: str) -> float | None:
    for t, msg in events:
        if msg == f"== {stage}":
            return t
    return None


def console_events(text: str) -> list[tuple[float, str]]:
    out = []
    for line in text.splitlines():
        m = _CONSOLE.match(line.strip())
        if m:
            out.append((float(m.group(1)), m.group(2)))
    return out


_PHASE_MARKS = (
    ("init_started", re.compile(r"^Run .* as init process")),
    ("init_basic_done", re.compile(r"virtme-ng-init: basic initialization done")),
    ("script_start", re.compile(r"virtme-ng-init: starting script")),
    ("guest_ready", re.compile(r"^RECHARGE-HARNESS-GUEST-READY\s*$")),
)


def boot_phases(console: str, boot_to_ssh_s: float | None, *,
                guest_zero_s: float | None = None,
                boot_to_shell_s: float | None = None) -> dict[str, Any]:
    """Where boot -> SSH time goes, from the console's printk timestamps.

    ``guest_zero_s``: host seconds from vng start to the guest clock's 0 (QEMU start,
    firmware, decompression: everything before the kernel's first timestamp).
    """
    marks: dict[str, float] = {}
    for t, msg in console_events(console):
        for name, rx in _PHASE_MARKS:
            if name not in marks and rx.search(msg):
                marks[name] = t
    out: dict[str, Any] = {"marks_guest_s": marks}
    phases: dict[str, float] = {}
    if guest_zero_s is not None:
        phases["before_kernel (vng, QEMU, firmware, decompress)"] = guest_zero_s
    if "init_started" in marks:
        phases["kernel init (to /init)"] = marks["init_started"]
    if "init_started" in marks and "init_basic_done" in marks:
        phases["virtme-ng-init basics (mounts, tmpfiles)"] = (marks["init_basic_done"]
                                                              - marks["init_started"])
    if "init_basic_done" in marks and "script_start" in marks:
        phases["virtme-ng-init services (to 'starting script')"] = (
            marks["script_start"] - marks["init_basic_done"])
    if "script_start" in marks and "guest_ready" in marks:
        phases["guest command (network, root, sshd)"] = (marks["guest_ready"]
                                                         - marks["script_start"])
    if (guest_zero_s is not None and boot_to_ssh_s is not None and "guest_ready" in marks):
        phases["SSH handshake (from the ready line)"] = (boot_to_ssh_s - guest_zero_s
                                                         - marks["guest_ready"])
    if boot_to_ssh_s is not None and boot_to_shell_s is not None:
        phases["first shell (session, login shell)"] = boot_to_shell_s - boot_to_ssh_s
    out["phases_s"] = {k: round(v, 2) for k, v in phases.items()}
    return out


def guest_zero_from_markers(events: list[tuple[float, str]], console: str) -> float | None:
    """Host seconds from vng start to the guest's clock 0, from a suite marker.

    The harness logs ``suites: <name> (timeout`` right before the guest writes
    ``RECHARGE-HARNESS: begin <name>`` to /dev/kmsg (one SSH round trip later).
    """
    start = next((t for t, m in events if m.startswith("vm: starting ")), None)
    if start is None:
        return None
    host = {}
    for t, m in events:
        mm = re.match(r"suites: (\S+) \(timeout", m)
        if mm and mm.group(1) not in host:
            host[mm.group(1)] = t
    for t, msg in console_events(console):
        mm = re.match(r"RECHARGE-HARNESS: begin (\S+)", msg)
        if mm and mm.group(1) in host:
            return round(host[mm.group(1)] - start - t, 2)
    return None


# --------------------------------------------------------------- child runs --


def _events(child: ChildRun) -> list[tuple[float, str]]:
    hl = child.file("harness.log")
    return harness_log_events(hl.read_text(encoding="utf-8", errors="replace")) if hl else []


def summarize_child(child: ChildRun) -> ChildSummary:
    """What a child run took: wall time, per-stage split, lock waits, boot, suites."""
    rec = child.record()
    stages = {name: StageTime(st.status, st.duration_s, st.detail)
              for name, st in rec.stages.items()}
    total = sum(float(s.duration_s or 0) for s in stages.values())
    events = _events(child)
    vm = rec.group("vm")
    suites = {n: {"status": s.get("status"), "duration_s": s.get("duration_s")}
              for n, s in rec.suites.items()}
    fs = rec.failed_stage()
    out = ChildSummary(
        label=child.label, exit_code=child.exit_code,
        run_dir=str(child.run_dir) if child.run_dir else None,
        wall_s=round(child.duration_s, 2), stages=stages, stage_sum_s=round(total, 2),
        outside_stages_s=round(child.duration_s - total, 2), lock_waits_s=lock_waits(events),
        build_info=rec.group("build_info"), suites=suites,
        suites_total_s=round(sum(float(s["duration_s"] or 0) for s in suites.values()), 2),
        failed_stage={"stage": fs[0], "detail": fs[1]} if fs else None)
    if vm.get("boot_to_ssh_s") is not None:
        # ``--parallel``: the record's boot timings are the first guest's (harness.modes.parallel)
        console = child.file("vm/console.log") or child.file("guest-1/vm/console.log")
        text = console.read_text(encoding="utf-8", errors="replace") if console else ""
        zero = guest_zero_from_markers(events, text)
        out.boot = {
            "boot_to_ssh_s": vm.get("boot_to_ssh_s"),
            "boot_to_shell_s": vm.get("boot_to_shell_s"),
            "accel": vm.get("accel"),
            "guest_zero_s": zero,
            **boot_phases(text, vm.get("boot_to_ssh_s"), guest_zero_s=zero,
                          boot_to_shell_s=vm.get("boot_to_shell_s")),
        }
    return out


#: Sources every ``vmlinux`` link recompiles (version stamp, the compressed boot image).
_LINK_TIME_SOURCES = ("init/version-timestamp.c", "arch/x86/boot/")


def build_phases(child: ChildRun, summary: ChildSummary) -> dict[str, Any]:
    """What the build stage of ``child`` recompiled and when each phase ended.

    From the build log (``CC`` lines) and the mtimes of the objects, ``vmlinux.o``,
    ``vmlinux`` and ``bzImage`` in the build dir: read right after the run, before
    anything else builds there.
    """
    kbuild = Path(str(child.record().group("config").get("kbuild", "") or "/nonexistent"))
    blog = child.file("build.log")
    text = blog.read_text(encoding="utf-8", errors="replace") if blog else ""
    compiled = sorted(buildlog.compiled_sources(text))
    out: dict[str, Any] = {"kbuild": str(kbuild), "compiled": compiled,
                           "compiled_count": len(compiled)}
    t0 = stage_start(_events(child), "build")
    build = summary.stages.get("build")
    dur = build.duration_s if build else None
    if t0 is None or not kbuild.is_dir() or not compiled:
        return out

    def mtime(rel: str) -> float | None:
        try:
            return (kbuild / rel).stat().st_mtime
        except OSError:
            return None

    # Objects of the kernel proper; the ones below are rebuilt by every link, after vmlinux.
    kernel = [c for c in compiled if not c.startswith(_LINK_TIME_SOURCES)]
    out["compiled_kernel"] = kernel
    objs = [m for m in (mtime(c[:-2] + ".o") for c in kernel) if m is not None]
    marks = [("make start + compile (to the last object)", max(objs) if objs else None),
             ("archives (built-in.a, vmlinux.a)", mtime("vmlinux.a")),
             ("vmlinux.o + modpost", mtime("vmlinux.o")),
             ("vmlinux link (kallsyms passes)", mtime("vmlinux")),
             ("bzImage (compress, boot setup)", mtime("arch/x86/boot/bzImage"))]
    ph: dict[str, float] = {}
    prev = t0
    for name, t in marks:
        if t is None or t < prev - 0.01:
            continue
        ph[name] = t - prev
        prev = t
    if dur is not None and prev > t0:
        ph["after bzImage (stamps)"] = t0 + float(dur) - prev
    out["phases_s"] = {k: round(v, 2) for k, v in ph.items()}
    return out


#: Build products whose first output line :func:`timed_make` timestamps.
LINK_TARGETS = frozenset({"vmlinux.a", "vmlinux.o", ".tmp_vmlinux1", ".tmp_vmlinux2", "vmlinux",
                          "arch/x86/boot/compressed/vmlinux", "arch/x86/boot/vmlinux.bin",
                          "arch/x86/boot/bzImage"})


def timed_make(argv: list[str], tree: Path, log_path: Path, env: Mapping[str, str] | None = None,
               timeout: float = 3 * 3600.0) -> MakeTiming:
    """Run make with a timestamp on every line: duration, CC count, CPU time, phases."""
    first: dict[str, float] = {}
    count = {"cc": 0}
    start = time.monotonic()

    def on_line(line: str) -> None:
        toks = line.split()
        if len(toks) < 2 or not toks[0].isupper():
            return
        t = time.monotonic() - start
        if toks[0] == "CC":
            count["cc"] += 1
            first.setdefault("first CC", t)
            first["last CC"] = t
        elif toks[1] in LINK_TARGETS:
            first.setdefault(f"{toks[0]} {toks[1]}", t)

    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = proc.run(argv, cwd=tree, timeout=timeout, log_path=log_path, env=env, on_line=on_line,
                   capture=False)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return MakeTiming(
        argv=argv, exit_code=res.returncode, duration_s=round(res.duration_s, 2),
        cc_count=count["cc"],
        cpu_user_s=round(ru1.ru_utime - ru0.ru_utime, 1),
        cpu_sys_s=round(ru1.ru_stime - ru0.ru_stime, 1),
        first_seen_s={k: round(v, 2) for k, v in sorted(first.items(), key=lambda kv: kv[1])},
        tail=list(res.tail[-5:]) if res.returncode else [])
