"""``recharge-harness bench``: how fast is the loop, and does the series cost anything?

One run measures, on this machine, and writes ``bench.json`` (raw seconds, every
stage split) and ``bench.md`` (the table) in ``<out>/<N>/``:

* ``cold`` (only with ``--cold``): cold kernel builds (``CCACHE_DISABLE=1``, fresh
  ``O=`` dirs under the cache) of the ``tiny`` profile and of the ``vng-full``
  anchor from one private checkout of the same commit; ratio tiny / vng-full.
* ``warm``: ``build`` (to prime), then ``run`` again with nothing changed: the build
  stage should be skipped; its boot and suite stages give boot -> SSH and the
  whole-suite duration.
* ``edit``: a one-line change in ``mm/memcontrol.c`` -> the recharge suites' verdict
  (``run --suite recharge``), split by stage, with what the build recompiled and
  where its time went (object and link mtimes), then a ``build`` that puts the
  cache back and a timed no-op ``make`` (the floor of any incremental build).
  The change is an extra patch in a private copy of the series (in the cache),
  applied by the harness in its own worktree: never in anybody's tree.
* ``hotpath``: ``selftests/bench/hotpath.c`` in the guest at sysctl 0 and 1 on the
  patched kernel, and on the unpatched base kernel if one was built before (or
  ``--with-base`` / ``--base-kernel``): page-cache read and page-fault throughput
  (median, spread), recharge throughput; patched / base ratios.

The child runs are ordinary harness runs (``python -m harness ...`` via
:mod:`harness.modes.child`), with their own run directories under ``<out>/<N>/runs/``.
Every number in the report is measured in this run; nothing is hard-coded but the
goals.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol

from harness.errors import EXIT_FAIL, EXIT_NO_VERDICT, EXIT_PASS, HarnessError, InfraError
from harness.modes import child as rundir
from harness.modes.child import ChildRun, ChildRunner
from harness.parse import buildlog
from harness.paths import kbuild_lock
from harness.stages.profiles import BASE_FRAGMENTS, PROFILES

if TYPE_CHECKING:  # pragma: no cover
    from harness.model import Options

log = logging.getLogger(__name__)

SCHEMA = 1
STEPS = ("warm", "edit", "hotpath")

#: The goals of issue 6 (the only numbers in this module that are not measured).
GOAL_COLD_RATIO = 0.33  # cold tiny build <= 0.33 x the vng-full anchor
GOAL_EDIT_S = 120.0  # one-line change in mm/memcontrol.c -> verdict
GOAL_BOOT_S = 10.0  # boot -> SSH ready
GOAL_HOT_RATIO = 0.99  # patched / base throughput on the hot path

#: Cold-build profiles (docs/design.md, PROFILES): base config of virtme-configkernel,
#: then the fragments in the order the pipeline merges them (the tree's cgroup
#: selftest config first, then recharge + testenv, then the profile's own).
#: Built from harness.stages.profiles: "tiny" is the default test profile, "vng-full" the
#: ``vng`` profile (virtme-ng's default config with the same fragments).
COLD_PROFILES: dict[str, tuple[str, tuple[str, ...]]] = {
    label: (PROFILES[name].base, BASE_FRAGMENTS + PROFILES[name].fragments)
    for label, name in (("tiny", "tiny"), ("vng-full", "vng"))
}

EDIT_PATCH_NAME = "9999-bench-one-line-edit-in-mm-memcontrol.c.patch"
EDIT_LINE = ('static void __maybe_unused rh_bench_edit(void) '
             '{ pr_debug("recharge-harness bench: one-line edit\\n"); }')

SYSCTL_PATH = "/proc/sys/vm/recharge_offline_memcgs"
#: The hot-path metric of each case that the patched/base ratio is computed on.
HOT_METRICS = {"read_ext4": "read_MiBps", "read_tmpfs": "read_MiBps",
               "fault_ext4": "faults_per_s", "fault_tmpfs": "faults_per_s",
               "mark_accessed_ext4": "alt_reads_per_s"}


# ------------------------------------------------------------------ options --


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("bench")
    g.add_argument("--cold", action="store_true",
                   help="also time cold builds (no ccache, fresh O= dirs) of the tiny profile "
                        "and of the vng-full anchor: about 30 min of CPU on 2 cores")
    g.add_argument("--steps", default=",".join(STEPS),
                   help=f"comma-separated subset of {','.join(STEPS)},cold or 'none' (default: "
                        f"{','.join(STEPS)}; --cold adds cold)")
    g.add_argument("--with-base", action="store_true",
                   help="build the unpatched base kernel (empty series) for the hot-path "
                        "ratios if no earlier run has one")
    g.add_argument("--base-kernel", type=Path, metavar="BZIMAGE",
                   help="unpatched base kernel to compare the hot path against")
    g.add_argument("--reps", type=int, default=7,
                   help="hot-path repetitions per program run (default 7)")
    g.add_argument("--rounds", type=int, default=2,
                   help="program runs per kernel and sysctl value, alternating 0/1 "
                        "(default 2; recharge cases only in the first)")
    g.add_argument("--insn-windows", type=int, default=3,
                   help="instruction-count windows per hot-path case, counted by a QEMU TCG "
                        "plugin built on demand (harness/stages/insncount.py; default 3, 0: off)")
    p.epilog = ("Writes <out>/<N>/bench.json and bench.md; exit 0 when everything was "
                "measured (goals missed or not), 1 when a hot-path case found a functional "
                "failure, 2 when a measurement could not be made.")


@dataclass
class BenchConfig:
    steps: tuple[str, ...] = STEPS
    cold: bool = False
    with_base: bool = False
    base_kernel: Path | None = None
    reps: int = 7
    rounds: int = 2
    verbose: bool = False
    insn_windows: int = 3

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "BenchConfig":
        from harness.errors import UserError

        steps = tuple(s.strip() for s in str(getattr(args, "steps", "") or "").split(",")
                      if s.strip() and s.strip() != "none")
        cold = bool(getattr(args, "cold", False)) or "cold" in steps
        steps = tuple(s for s in steps if s != "cold")
        bad = [s for s in steps if s not in STEPS]
        if bad:
            raise UserError(f"--steps: unknown step(s) {', '.join(bad)} "
                            f"(valid: {', '.join(STEPS)})")
        reps, rounds = int(getattr(args, "reps", 7)), int(getattr(args, "rounds", 2))
        insn_windows = int(getattr(args, "insn_windows", 3) or 0)
        if not 1 <= reps <= 64 or not 1 <= rounds <= 10 or not 0 <= insn_windows <= 64:
            raise UserError("--reps must be 1..64, --rounds 1..10, --insn-windows 0..64")
        base_kernel = getattr(args, "base_kernel", None)
        if base_kernel is not None and not Path(base_kernel).is_file():
            raise UserError(f"--base-kernel {base_kernel}: no such file")
        return cls(steps=steps, cold=cold,
                   with_base=bool(getattr(args, "with_base", False)),
                   base_kernel=Path(base_kernel).resolve() if base_kernel else None,
                   reps=reps, rounds=rounds, verbose=bool(getattr(args, "verbose", False)),
                   insn_windows=insn_windows)


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
    ("network_start", re.compile(r"virtme-ng-init: setting up network device")),
    ("dhcp_lease", re.compile(r"udhcpc: lease of")),
    ("script_start", re.compile(r"virtme-ng-init: starting script")),
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
        phases["network + DHCP (to 'starting script')"] = (marks["script_start"]
                                                           - marks["init_basic_done"])
        if "network_start" in marks and "dhcp_lease" in marks:
            out["dhcp_s"] = round(marks["dhcp_lease"] - marks["network_start"], 2)
    if (guest_zero_s is not None and boot_to_ssh_s is not None and "script_start" in marks):
        phases["sshd start + SSH handshake"] = (boot_to_ssh_s - guest_zero_s
                                                - marks["script_start"])
    if boot_to_ssh_s is not None and boot_to_shell_s is not None:
        phases["first shell (login, PAM, .bashrc over 9p)"] = boot_to_shell_s - boot_to_ssh_s
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


def summarize_child(child: ChildRun) -> dict[str, Any]:
    """What a child run took: wall time, per-stage split, lock waits, boot, suites."""
    meta = child.metadata()
    stages = {}
    for name, st in rundir.stages(meta).items():
        if isinstance(st, dict):
            stages[name] = {"status": st.get("status"), "duration_s": st.get("duration_s"),
                            "detail": st.get("detail", "")}
    total = sum(float(s["duration_s"] or 0) for s in stages.values())
    events: list[tuple[float, str]] = []
    hl = child.file("harness.log")
    if hl is not None:
        events = harness_log_events(hl.read_text(encoding="utf-8", errors="replace"))
    vm = meta.get("vm", {}) if isinstance(meta.get("vm"), dict) else {}
    suites = {n: {"status": s.get("status"), "duration_s": s.get("duration_s")}
              for n, s in (meta.get("results", {}).get("suites", {}) or {}).items()
              if isinstance(s, dict)}
    out: dict[str, Any] = {
        "label": child.label,
        "exit_code": child.exit_code,
        "run_dir": str(child.run_dir) if child.run_dir else None,
        "wall_s": round(child.duration_s, 2),
        "stages": stages,
        "stage_sum_s": round(total, 2),
        "outside_stages_s": round(child.duration_s - total, 2),
        "lock_waits_s": lock_waits(events),
        "build_info": meta.get("build_info", {}),
        "suites": suites,
        "suites_total_s": round(sum(float(s["duration_s"] or 0) for s in suites.values()), 2),
    }
    fs = rundir.failed_stage(meta)
    if fs:
        out["failed_stage"] = {"stage": fs[0], "detail": fs[1]}
    if vm.get("boot_to_ssh_s") is not None:
        console = child.file("vm/console.log")
        text = console.read_text(encoding="utf-8", errors="replace") if console else ""
        zero = guest_zero_from_markers(events, text)
        out["boot"] = {
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


def build_phases(child: ChildRun, summary: dict[str, Any]) -> dict[str, Any]:
    """What the build stage of ``child`` recompiled and when each phase ended.

    From the build log (``CC`` lines) and the mtimes of the objects, ``vmlinux.o``,
    ``vmlinux`` and ``bzImage`` in the build dir: read right after the run, before
    anything else builds there.
    """
    meta = child.metadata()
    kbuild = Path(str(meta.get("config", {}).get("kbuild", "") or "/nonexistent"))
    blog = child.file("build.log")
    text = blog.read_text(encoding="utf-8", errors="replace") if blog else ""
    compiled = sorted(buildlog.compiled_sources(text))
    out: dict[str, Any] = {"kbuild": str(kbuild), "compiled": compiled,
                           "compiled_count": len(compiled)}
    hl = child.file("harness.log")
    events = harness_log_events(hl.read_text(encoding="utf-8", errors="replace")) if hl else []
    t0 = stage_start(events, "build")
    dur = summary.get("stages", {}).get("build", {}).get("duration_s")
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


def timed_make(argv: list[str], tree: Path, log_path: Path, env: dict[str, str] | None = None,
               timeout: float = 3 * 3600.0) -> dict[str, Any]:
    """Run make with a timestamp on every line: duration, CC count, CPU time, phases."""
    from harness import proc

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
    return {
        "argv": argv, "exit_code": res.returncode, "duration_s": round(res.duration_s, 2),
        "cc_count": count["cc"],
        "cpu_user_s": round(ru1.ru_utime - ru0.ru_utime, 1),
        "cpu_sys_s": round(ru1.ru_stime - ru0.ru_stime, 1),
        "first_seen_s": {k: round(v, 2) for k, v in sorted(first.items(), key=lambda kv: kv[1])},
        "tail": list(res.tail[-5:]) if res.returncode else [],
    }


# ------------------------------------------------------------- edit series --


def read_blob(repo: Path, commit: str, path: str) -> str:
    """``path`` at ``commit``, byte for byte (``git show``; no stripping)."""
    res = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"],
                         capture_output=True, check=True, timeout=120)
    return res.stdout.decode("utf-8", "surrogateescape")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def edit_patch(original: str, line: str = EDIT_LINE) -> str:
    """An mbox patch appending ``line`` to ``mm/memcontrol.c`` (whose text is ``original``)."""
    if not original.endswith("\n"):
        original += "\n"  # pragma: no cover - kernel sources end with a newline
    lines = original.splitlines(keepends=True)
    ctx = lines[-3:]
    start = len(lines) - len(ctx) + 1
    new = original + line + "\n"
    hunk = "".join(" " + c for c in ctx) + "+" + line + "\n"
    old_id = git_blob_id(original.encode("utf-8", "surrogateescape"))
    new_id = git_blob_id(new.encode("utf-8", "surrogateescape"))
    return (
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        "From: recharge-harness bench <bench@localhost>\n"
        "Date: Wed, 1 Jan 2025 00:00:00 +0000\n"
        "Subject: [PATCH] bench: one-line edit in mm/memcontrol.c\n"
        "\n"
        "Added by `recharge-harness bench` to a private copy of the series, to time\n"
        "edit -> verdict.  Never applied to anybody's tree.\n"
        "---\n"
        "diff --git a/mm/memcontrol.c b/mm/memcontrol.c\n"
        f"index {old_id[:12]}..{new_id[:12]} 100644\n"
        "--- a/mm/memcontrol.c\n"
        "+++ b/mm/memcontrol.c\n"
        f"@@ -{start},{len(ctx)} +{start},{len(ctx) + 1} @@\n"
        f"{hunk}"
        "-- \n2.39.5\n\n"
    )


def make_edit_series(series_file: Path | None, memcontrol: str, dest: Path) -> Path:
    """``dest/series``: the series of ``series_file`` (may be None/empty) + the edit patch.

    Rewritten only when the content changes, so the harness's branch for it
    (named after a hash of the patches) is reused from one bench run to the next.
    """
    from harness.paths import write_if_changed
    from harness.stages import apply as seriesmod

    names: list[str] = []
    if series_file is not None and series_file.is_file():
        ser = seriesmod.read_series(series_file, required=True)
        for p in ser.patches:
            target = dest / p.name
            target.parent.mkdir(parents=True, exist_ok=True)
            write_if_changed(target, p.path.read_text(encoding="utf-8", errors="surrogateescape"))
            names.append(p.name)
    dest.mkdir(parents=True, exist_ok=True)
    write_if_changed(dest / EDIT_PATCH_NAME, edit_patch(memcontrol))
    names.append(EDIT_PATCH_NAME)
    series = dest / "series"
    write_if_changed(series, "# recharge-harness bench: the series + a one-line edit\n"
                     + "".join(n + "\n" for n in names))
    return series


def edit_branch_exists(repo: Path, worktree_name: str, base_commit: str, series: Path) -> bool:
    from harness import gitutil
    from harness.stages import apply as seriesmod

    key = seriesmod.series_key(base_commit, seriesmod.read_series(series))
    return gitutil.rev_parse(repo, f"refs/heads/harness/{worktree_name}/{key[:16]}") is not None


# --------------------------------------------------------------- hot path --

_BENCH_DIAG = re.compile(r"^# bench (\S+) (\S+) (.*)$")
_RESULT = re.compile(r"^(not ok|ok) \d+ (\S+)(?:\s+#\s*(SKIP)\s*(.*))?$")


def parse_hotpath(text: str) -> dict[str, Any]:
    """hotpath's KTAP: case statuses and every ``# bench <case> <metric> k=v...`` line."""
    cases: dict[str, dict[str, Any]] = {}
    metrics: dict[str, dict[str, dict[str, Any]]] = {}
    info: dict[str, str] = {}
    for line in text.splitlines():
        line = line.rstrip()
        m = _BENCH_DIAG.match(line)
        if m:
            case, metric, rest = m.groups()
            kv = dict(re.findall(r"(\w+)=(\S+)", rest))
            if case in ("kernel", "sysctl"):
                info[case] = f"{metric} {rest}"
                continue
            entry: dict[str, Any] = {}
            for k, v in kv.items():
                if k == "samples":
                    entry[k] = [float(x) for x in v.split(",") if x]
                elif k in ("unit",):
                    entry[k] = v
                else:
                    try:
                        entry[k] = float(v)
                    except ValueError:
                        entry[k] = v
            metrics.setdefault(case, {})[metric] = entry
            continue
        m = _RESULT.match(line)
        if m:
            status = "skip" if m.group(3) else ("pass" if m.group(1) == "ok" else "fail")
            cases[m.group(2)] = {"status": status, "reason": (m.group(4) or "").strip()}
    return {"cases": cases, "metrics": metrics, "info": info}


def stats(samples: list[float]) -> dict[str, Any]:
    if not samples:
        return {"n": 0}
    med = statistics.median(samples)
    return {"median": round(med, 2), "min": round(min(samples), 2), "max": round(max(samples), 2),
            "spread_pct": round(100.0 * (max(samples) - min(samples)) / med, 1) if med else 0.0,
            "n": len(samples), "samples": samples}


def merge_runs(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per case and metric, every sample (or value) of ``runs`` pooled: median and spread."""
    pooled: dict[str, dict[str, list[float]]] = {}
    units: dict[tuple[str, str], str] = {}
    for r in runs:
        for case, ms in r.get("metrics", {}).items():
            for metric, e in ms.items():
                vals = e.get("samples") or ([e["value"]] if "value" in e else [])
                pooled.setdefault(case, {}).setdefault(metric, []).extend(vals)
                if "unit" in e:
                    units[(case, metric)] = e["unit"]
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for case, ms in pooled.items():
        for metric, vals in ms.items():
            out.setdefault(case, {})[metric] = {**stats(vals),
                                                "unit": units.get((case, metric), "")}
    return out


class GuestRunner(Protocol):
    def run(self, command: str, timeout: float, *, cwd: str | None = None,
            kill_after: float = 10.0) -> Any: ...


def run_hotpath(guest: GuestRunner, program: Path, ktap_dir: Path, label: str, *,
                reps: int, rounds: int, timeout_s: float = 1200.0,
                insn: Any = None) -> list[dict[str, Any]]:
    """``rounds`` x (sysctl 0 and 1, ABBA order; or once if the sysctl is absent).

    ``insn``: a :class:`harness.stages.insncount.Session` when the guest runs under the
    instruction-counting plugin (adds ``-i N`` and each run's instruction windows).
    """
    probe = guest.run(f"cat {SYSCTL_PATH} 2>/dev/null || echo absent", 30)
    current = (probe.stdout or "").strip()
    present = probe.exit_code == 0 and current.isdigit()
    order: list[tuple[int, int | None]] = []
    for r in range(rounds):
        vals: list[int | None] = ([0, 1] if r % 2 == 0 else [1, 0]) if present else [None]
        order += [(r, v) for v in vals]
    ktap_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    try:
        for r, v in order:
            if v is not None:
                res = guest.run(f"echo {v} > {SYSCTL_PATH} && cat {SYSCTL_PATH}", 30)
                if res.exit_code != 0 or (res.stdout or "").strip() != str(v):
                    raise InfraError(f"hotpath: could not set the sysctl to {v}: "
                                     f"{(res.stderr or res.error or '').strip()[:160]}")
            argv = [str(program), "-r", str(reps)] + (["-H"] if r > 0 else [])
            if insn is not None:
                argv += insn.program_args()
            log.info("bench: hotpath on %s, sysctl %s, round %d", label,
                     "absent" if v is None else v, r + 1)
            start = time.monotonic()
            res = guest.run("stdbuf -oL -eL " + shlex.join(argv), timeout_s, cwd="/")
            took = time.monotonic() - start
            name = f"{label}-sysctl{'-absent' if v is None else v}-round{r + 1}"
            (ktap_dir / f"{name}.tap").write_text(res.stdout or "", encoding="utf-8")
            parsed = parse_hotpath(res.stdout or "")
            runs.append({"label": label, "round": r + 1, "sysctl": v, "exit_code": res.exit_code,
                         "duration_s": round(took, 2), "timed_out": bool(res.timed_out),
                         "tap": str(ktap_dir / f"{name}.tap"), **parsed})
            if insn is not None:
                insn.attach(runs[-1], res.stdout or "")
    finally:
        if present:
            guest.run(f"echo {current} > {SYSCTL_PATH}", 30)
    return runs


@dataclass
class BootedGuest:
    guest: Any
    vm: Any
    accel: str
    boot_to_ssh_s: float
    boot_to_shell_s: float
    guest_zero_s: float | None
    setup_exit: int | None


@contextlib.contextmanager
def booted_guest(opts: "Options", bzimage: Path, workdir: Path, budget_s: int = 3600,
                 qemu_opts: Callable[[str], tuple[str, ...]] | None = None
                 ) -> Iterator[BootedGuest]:
    """Boot ``bzImage`` the way the pipeline does (same vng flags, disks, guest-setup).

    ``qemu_opts(accel)``: extra QEMU options for the chosen accelerator.
    """
    from harness.errors import BootError
    from harness.stages import boot as vmmod
    from harness.stages.ssh import Guest

    workdir.mkdir(parents=True, exist_ok=True)
    ext4, swap = vmmod.make_scratch_images(workdir, log_path=workdir / "scratch.log")
    accel = vmmod.choose_accel(opts.accel, bzimage, opts.cache, workdir)
    spec = vmmod.VmSpec(bzimage=bzimage, memory=opts.memory, cpus=opts.cpus, accel=accel.accel,
                        disks=(ext4, swap), budget_s=budget_s,
                        force_9p=not vmmod.virtiofsd_available(),
                        tcg_multithread=opts.tcg_multithread,
                        qemu_opts=qemu_opts(accel.accel) if qemu_opts else ())
    vm = vmmod.Vm(spec, workdir)
    guest = None
    try:
        vm.start()
        guest = Guest("127.0.0.1", vm.port, "root", vm.key_path, vm.host_key_files())
        try:
            guest.connect(opts.boot_timeout_s, alive=vm.alive, ready=vm.guest_ready)
        except HarnessError as e:
            raise BootError(f"guest not reachable: {vm.death_reason() if not vm.alive() else e}",
                            log=vm.console_log) from e
        ssh_s = time.monotonic() - vm.started_at
        up = guest.run("cat /proc/uptime", 120)
        shell_s = time.monotonic() - vm.started_at
        zero = None
        with contextlib.suppress(ValueError, IndexError):
            zero = round(shell_s - float((up.stdout or "").split()[0]), 2)
        setup = guest.run(f"bash {opts.project / 'selftests' / 'guest-setup.sh'}", 300)
        (workdir / "guest-setup.log").write_text(
            f"{setup.stdout}\n--- stderr ---\n{setup.stderr}\n[exit {setup.exit_code}]\n")
        yield BootedGuest(guest, vm, accel.accel, round(ssh_s, 2), round(shell_s, 2), zero,
                          setup.exit_code)
    finally:
        if guest is not None:
            guest.close()
        vm.stop()
        for img in (ext4, swap):
            img.unlink(missing_ok=True)


#: (label, bzImage, program, workdir) -> (boot facts, program runs); injectable for tests.
KernelBench = Callable[[str, Path, Path, Path], tuple[dict[str, Any], list[dict[str, Any]]]]


def default_kernel_bench(opts: "Options", cfg: BenchConfig) -> KernelBench:
    from harness.stages import insncount

    plugin: list[insncount.Plugin] = []  # built once, for the first kernel

    def bench(label: str, bzimage: Path, program: Path, workdir: Path):
        if not plugin:
            plugin.append(insncount.prepare_plugin(opts.cache) if cfg.insn_windows else
                          insncount.Plugin(None, "--insn-windows 0"))
            log.info("bench: instruction counts: %s", plugin[0].reason)
        session = insncount.Session(workdir / "insncount.out", cfg.insn_windows)
        used: dict[str, Any] = plugin[0].describe()

        def qemu_opts(accel: str) -> tuple[str, ...]:
            if not plugin[0].ok:
                return ()
            if accel != "tcg":
                used.update(disabled=True, reason=f"the guest runs under {accel}: "
                            "TCG plugins count nothing there")
                return ()
            session.start()
            return (plugin[0].qemu_arg(session.out),)

        with booted_guest(opts, bzimage, workdir, qemu_opts=qemu_opts) as bg:
            console = bg.vm.console_text()
            boot = {"boot_to_ssh_s": bg.boot_to_ssh_s, "boot_to_shell_s": bg.boot_to_shell_s,
                    "accel": bg.accel, "guest_zero_s": bg.guest_zero_s,
                    "guest_setup_exit": bg.setup_exit,
                    **boot_phases(console, bg.boot_to_ssh_s, guest_zero_s=bg.guest_zero_s,
                                  boot_to_shell_s=bg.boot_to_shell_s)}
            boot["host_loadavg_before"] = list(os.getloadavg())
            boot["insn_plugin"] = used
            runs = run_hotpath(bg.guest, program, workdir / "ktap", label, reps=cfg.reps,
                               rounds=cfg.rounds,
                               insn=session if plugin[0].ok and not used.get("disabled")
                               else None)
            boot["host_loadavg_after"] = list(os.getloadavg())
            dm = bg.guest.run("dmesg", 60)
            if dm.exit_code == 0:
                (workdir / "dmesg.log").write_text(dm.stdout or "")
            return boot, runs
    return bench


def fragments_match(run_dir: Path, expected: list[Path]) -> bool:
    """Did the run at ``run_dir`` use exactly the fragments ``expected`` (names and content)?"""
    d = run_dir / "fragments"
    if not d.is_dir():
        return False

    def index(p: Path) -> int:
        head = p.name.split("-", 1)[0]
        return int(head) if head.isdigit() else 10**6

    got = sorted(d.iterdir(), key=index)
    if len(got) != len(expected):
        return False
    for g, e in zip(got, expected):
        try:
            if g.name.split("-", 1)[-1] != e.name or g.read_bytes() != e.read_bytes():
                return False
        except OSError:
            return False
    return True


def find_base_kernel(roots: list[Path], base_commit: str, profile: str,
                     fragments: list[Path] | None = None) -> tuple[Path, bool] | None:
    """The newest unpatched build of ``base_commit`` (same profile) in run dirs under ``roots``.

    Prefers one built from the same ``fragments`` (content); returns (bzImage, same
    fragments?) or None.
    """
    best: tuple[bool, float, Path] | None = None
    seen: set[Path] = set()
    for root in roots:
        if not root.is_dir():
            continue
        for pattern in ("*/metadata.json", "*/*/*/metadata.json", "*/runs/*/*/metadata.json"):
            for mf in root.glob(pattern):
                d = mf.parent.resolve()
                if d in seen:
                    continue
                seen.add(d)
                meta = rundir.read_metadata(d)
                src = meta.get("source", {})
                if (src.get("base_commit") != base_commit or src.get("patches")
                        or src.get("head_commit") != base_commit):
                    continue
                if meta.get("build", {}).get("options", {}).get("profile") != profile:
                    continue
                if rundir.stages(meta).get("build", {}).get("status") != "PASS":
                    continue
                bz = d / "kernel" / "bzImage"
                if not bz.is_file():
                    continue
                cand = (fragments is not None and fragments_match(d, fragments),
                        bz.stat().st_mtime, bz)
                if best is None or cand[:2] > best[:2]:
                    best = cand
    return (best[2], best[0]) if best else None


def config_difference(a: Path, b: Path) -> list[str]:
    """Options whose value differs between two ``.config`` files (series options excluded)."""
    from harness.stages.config import parse_config

    try:
        ca = parse_config(a.read_text(encoding="utf-8"))
        cb = parse_config(b.read_text(encoding="utf-8"))
    except OSError:
        return ["(config not available)"]
    diff = []
    for k in sorted(set(ca) | set(cb)):
        if "RECHARGE" in k:
            continue
        if ca.get(k, "n") != cb.get(k, "n"):
            diff.append(f"{k}: {ca.get(k, 'n')} -> {cb.get(k, 'n')}")
    return diff


def hot_ratios(patched: dict[str, Any], base: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per hot-path case: medians at sysctl 0 / 1 / base, ratios, spreads."""
    rows = []
    for case, metric in HOT_METRICS.items():
        p0 = patched.get("0", {}).get(case, {}).get(metric, {})
        p1 = patched.get("1", {}).get(case, {}).get(metric, {})
        bm = (base.get("absent") or base.get("0") or {}) if base else {}
        b = bm.get(case, {}).get(metric, {})
        row: dict[str, Any] = {"case": case, "metric": metric,
                               "unit": p0.get("unit") or p1.get("unit") or b.get("unit", "")}
        for key, e in (("sysctl0", p0), ("sysctl1", p1), ("base", b)):
            if e.get("n"):
                row[key] = {k: e[k] for k in ("median", "min", "max", "spread_pct", "n")}
        if p0.get("n") and p1.get("n") and p0["median"]:
            row["sysctl1_over_sysctl0"] = round(p1["median"] / p0["median"], 4)
        if b.get("n") and b["median"]:
            for key, e in (("sysctl0", p0), ("sysctl1", p1)):
                if e.get("n"):
                    r = round(e["median"] / b["median"], 4)
                    noise = max(e.get("spread_pct", 0), b.get("spread_pct", 0)) / 100.0
                    row[f"{key}_over_base"] = r
                    if b.get("max"):
                        row[f"{key}_over_base_best"] = round(e["max"] / b["max"], 4)
                    row[f"{key}_met"] = r >= GOAL_HOT_RATIO
                    row[f"{key}_within_noise"] = abs(1 - r) <= noise
        rows.append(row)
    return rows


# -------------------------------------------------------------- cold builds --


def cold_fragments(project: Path, tree: Path, profile: str) -> tuple[str, list[Path]]:
    mode, names = COLD_PROFILES[profile]
    frags = []
    sc = tree / "tools/testing/selftests/cgroup/config"
    if sc.is_file():
        frags.append(sc)
    frags += [project / "kconfig" / n for n in names]
    missing = [str(f) for f in frags if not f.is_file()]
    if missing:
        raise InfraError(f"cold build {profile}: fragment(s) missing: {', '.join(missing)}")
    return mode, frags


def cold_build(project: Path, tree: Path, tree_commit: str, kbuild: Path, profile: str,
               log_dir: Path, jobs: int) -> dict[str, Any]:
    """Configure and build ``profile`` from scratch in a fresh ``kbuild`` (no ccache)."""
    from harness import proc
    from harness.paths import cache_root, file_lock
    from harness.stages import config as kconfig

    mode, frags = cold_fragments(project, tree, profile)
    if kbuild.exists():
        shutil.rmtree(kbuild)
    kbuild.mkdir(parents=True)
    clog = log_dir / f"cold-{profile}-config.log"
    blog = log_dir / f"cold-{profile}-build.log"
    out: dict[str, Any] = {"profile": profile, "base_config": mode, "tree_commit": tree_commit,
                           "fragments": [str(f) for f in frags], "kbuild": str(kbuild),
                           "config_log": str(clog), "build_log": str(blog)}
    t0 = time.monotonic()
    for argv in ([kconfig.vng_tool("virtme-configkernel"), mode, f"O={kbuild}"],
                 [str(tree / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(kbuild),
                  str(kbuild / ".config"), *map(str, frags)],
                 ["make", f"O={kbuild}", "olddefconfig"]):
        res = proc.run(argv, cwd=tree, timeout=900, log_path=clog)
        if res.returncode != 0:
            raise InfraError(f"cold build {profile}: {Path(argv[0]).name} failed", log=clog)
    out["config_s"] = round(time.monotonic() - t0, 2)
    text = (kbuild / ".config").read_text(encoding="utf-8")
    final = kconfig.parse_config(text)
    requested, _ = kconfig.requested_options(kconfig.Fragment.load(f) for f in frags)
    problems = kconfig.verify(final, requested, tree)
    out["config_problems"] = [p.describe() for p in problems]
    out["options_y"] = sum(1 for v in final.values() if v == "y")
    out["options_m"] = sum(1 for v in final.values() if v == "m")
    shutil.copy(kbuild / ".config", log_dir / f"cold-{profile}.config")
    wait0 = time.monotonic()
    with file_lock(kbuild_lock(cache_root()), "the kernel build lock"):
        out["lock_wait_s"] = round(time.monotonic() - wait0, 2)
        out["loadavg_before"] = list(os.getloadavg())
        log.info("bench: cold build of %s (%s), no ccache, in %s", profile, mode, kbuild)
        mk = timed_make(["make", f"O={kbuild}", f"-j{jobs}", "bzImage"], tree, blog,
                        env={"CCACHE_DISABLE": "1"})
        out["loadavg_after"] = list(os.getloadavg())
    out.update({"build_s": mk["duration_s"], "cc_count": mk["cc_count"],
                "cpu_user_s": mk["cpu_user_s"], "cpu_sys_s": mk["cpu_sys_s"],
                "exit_code": mk["exit_code"], "first_seen_s": mk["first_seen_s"]})
    bz = kbuild / "arch/x86/boot/bzImage"
    if mk["exit_code"] != 0 or not bz.is_file():
        out["error"] = (buildlog_first_error(blog) or "; ".join(mk["tail"]))[:300]
    else:
        out["bzimage_bytes"] = bz.stat().st_size
        shutil.copy(bz, log_dir / f"cold-{profile}.bzImage")
    by_dir: dict[str, int] = {}
    for src in buildlog.compiled_sources(blog.read_text(encoding="utf-8", errors="replace")):
        parts = src.split("/")
        key = "/".join(parts[:2]) if parts[0] in ("drivers", "arch", "fs", "net") \
            and len(parts) > 2 else parts[0]
        by_dir[key] = by_dir.get(key, 0) + 1
    out["cc_by_dir"] = dict(sorted(by_dir.items(), key=lambda kv: -kv[1])[:15])
    return out


def buildlog_first_error(path: Path) -> str:
    from harness.stages.build import first_error

    try:
        return first_error(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return ""


# ------------------------------------------------------------------- the run --


@dataclass
class Bench:
    """One bench run: the steps in order, results into ``data`` (bench.json)."""

    opts: "Options"
    args: argparse.Namespace
    cfg: BenchConfig
    run_dir: Path
    runner: ChildRunner
    kernel_bench: KernelBench
    data: dict[str, Any] = field(default_factory=dict)

    def child(self, label: str, argv: list[str], env: dict[str, str] | None = None) -> ChildRun:
        saved = {k: os.environ.get(k) for k in (env or {})}
        os.environ.update(env or {})
        try:
            return self.runner(label, argv, self.run_dir / "runs" / label,
                               self.run_dir / "runs" / f"{label}.log")
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def error(self, step: str, message: str) -> None:
        log.error("bench: %s: %s", step, message)
        self.data.setdefault("errors", []).append({"step": step, "error": message})

    def run(self) -> None:
        o = self.opts
        self.data.update({"schema": SCHEMA, "run_dir": str(self.run_dir),
                          "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                          "host": host_facts(), "steps": {},
                          "options": {"steps": list(self.cfg.steps), "cold": self.cfg.cold,
                                      "reps": self.cfg.reps, "rounds": self.cfg.rounds,
                                      "profile": o.profile, "jobs": o.jobs or os.cpu_count(),
                                      "argv": list(o.argv)}})
        common = rundir.forward_args(self.args, drop=("out",))
        common_no_suite = rundir.forward_args(self.args, drop=("out", "suite"))
        no_series = rundir.forward_args(self.args, drop=("out", "suite", "series"))
        steps = self.data["steps"]
        # Where the tree is: an `apply` child (cheap when the series is unchanged).
        ap = self.child("apply", ["apply", *common_no_suite])
        src = ap.metadata().get("source", {})
        if ap.exit_code != 0 or not src.get("head_commit"):
            self.error("apply", f"the series did not apply: {rundir.describe(ap)}")
            return
        steps["apply"] = summarize_child(ap)
        base_kernel = self.cfg.base_kernel
        if "hotpath" in self.cfg.steps and base_kernel is None:
            found = find_base_kernel([o.out, self.run_dir], src["base_commit"], o.profile,
                                     self._fragments(src))
            if found is not None and (found[1] or not self.cfg.with_base):
                base_kernel = found[0]
                self.data["steps"]["base_found"] = {"bzimage": str(found[0]),
                                                    "same_fragments": found[1]}
            if base_kernel is None and self.cfg.with_base:
                empty = self.run_dir / "base.series"
                empty.write_text("# empty: the unpatched base (recharge-harness bench)\n")
                bb = self.child("base-build", ["build", "--series", str(empty), *no_series])
                steps["base_build"] = summarize_child(bb)
                if bb.exit_code == 0 and bb.file("kernel/bzImage"):
                    base_kernel = bb.file("kernel/bzImage")
                else:
                    self.error("hotpath", f"base kernel build failed: {rundir.describe(bb)}")
        edit_series: Path | None = None
        if "edit" in self.cfg.steps:
            edit_series = self._prepare_edit(src)
        prime: ChildRun | None = None
        if "warm" in self.cfg.steps or "edit" in self.cfg.steps or "hotpath" in self.cfg.steps:
            prime = self.child("prime", ["build", *common_no_suite])
            steps["prime"] = summarize_child(prime)
            if prime.exit_code != 0:
                self.error("prime", f"build failed: {rundir.describe(prime)}")
                return
            if "edit" in self.cfg.steps and steps["prime"]["build_info"].get("skipped"):
                # The build was skipped as up to date by its stamp (commit + .config), but
                # files may be newer than their objects (same content, new mtimes: e.g.
                # when the edit branch was created, every file the series touches was
                # rewritten; other runs switching the shared worktree do the same).  Make
                # must absorb that now, or the edit's build would, and look slow.
                kbuild = Path(str(prime.metadata().get("config", {}).get("kbuild", "")))
                gone = buildlog.forget_objects(kbuild, ["mm/memcontrol.c"]) if kbuild.name else []
                log.info("bench: a real make before the edit (%d file(s) forgotten)", len(gone))
                prime = self.child("prime-2", ["build", *common_no_suite])
                steps["prime_2"] = summarize_child(prime)
                if prime.exit_code != 0:
                    self.error("prime", f"build failed: {rundir.describe(prime)}")
                    return
        warm_run: ChildRun | None = None
        if "warm" in self.cfg.steps:
            warm_run = self.child("warm", ["run", *common])
            steps["warm"] = summarize_child(warm_run)
            if warm_run.run_dir is None or "boot" not in steps["warm"]:
                self.error("warm", f"no boot/suite timings: {rundir.describe(warm_run)}")
        if edit_series is not None:
            self._edit(edit_series, no_series, common_no_suite, src)
        if "hotpath" in self.cfg.steps:
            self._hotpath(warm_run or prime, base_kernel)
        if self.cfg.cold:
            self._cold(src)

    def _fragments(self, src: dict[str, Any]) -> list[Path] | None:
        from harness.modes.run import fragments_for

        try:
            return fragments_for(self.opts.project, Path(src.get("worktree", "/nonexistent")),
                                 self.opts.profile)
        except HarnessError:
            return None

    # -- edit --------------------------------------------------------------

    def _prepare_edit(self, src: dict[str, Any]) -> Path | None:
        repo, head = Path(src.get("repo", "")), src["head_commit"]
        try:
            text = read_blob(repo, head, "mm/memcontrol.c")
        except (OSError, subprocess.SubprocessError) as e:
            self.error("edit", f"cannot read mm/memcontrol.c at {head[:12]}: {e}")
            return None
        series_file = self.opts.series or (self.opts.project / "patches" / "series")
        # Stable place (the cache), so the harness's branch for it is reused next time.
        dest = self.opts.cache / "bench" / f"edit-series-{Path(src['worktree']).name}"
        edit = make_edit_series(series_file, text, dest)
        info: dict[str, Any] = {"series": str(edit), "line": EDIT_LINE}
        if not edit_branch_exists(repo, Path(src["worktree"]).name, src["base_commit"], edit):
            # First time: the harness applies it from the base, which rewrites every file
            # the series touches; done before the priming build so that it absorbs that.
            a = self.child("edit-apply", ["apply", "--series", str(edit),
                                          *rundir.forward_args(self.args, drop=("out", "suite",
                                                                                "series"))])
            info["branch_created"] = a.exit_code == 0
            if a.exit_code != 0:
                self.error("edit", f"the edit series did not apply: {rundir.describe(a)}")
                return None
        self.data["steps"]["edit"] = info
        return edit

    def _edit(self, edit: Path, no_series: list[str], common_no_suite: list[str],
              src: dict[str, Any]) -> None:
        info = self.data["steps"].setdefault("edit", {})
        # CCACHE_RECACHE: the edited file is really compiled (a new edit is never cached).
        ch = self.child("edit", ["run", "--series", str(edit), "--suite", "recharge",
                                 *no_series], env={"CCACHE_RECACHE": "1"})
        s = summarize_child(ch)
        s["build_phases"] = build_phases(ch, s)
        info["run"] = s
        info["verdict_s"] = s["wall_s"]
        if ch.exit_code not in (0, 1):
            self.error("edit", f"no verdict: {rundir.describe(ch)}")
        # Put the cache back (the shared build now matches the real series again).
        back = self.child("revert", ["build", *common_no_suite])
        r = summarize_child(back)
        r["build_phases"] = build_phases(back, r)
        info["revert_build"] = r
        if back.exit_code != 0:
            self.error("edit", f"restoring build failed: {rundir.describe(back)}")
            return
        info["make_noop"] = self._make_noop(back)

    def _make_noop(self, child: ChildRun) -> dict[str, Any]:
        """``make bzImage`` with nothing to do: the floor of every incremental build."""
        from harness.paths import file_lock
        from harness.stages import build as buildmod

        meta = child.metadata()
        kbuild = Path(str(meta.get("config", {}).get("kbuild", "") or "/nonexistent"))
        src = meta.get("source", {})
        tree, head = Path(src.get("worktree", "/nonexistent")), src.get("head_commit", "")
        if not kbuild.is_dir() or not tree.is_dir():
            return {"error": "no build directory"}
        with file_lock(self.opts.cache / "locks" / f"{tree.name}.lock", f"worktree {tree.name}"):
            checked_out = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"],
                                         capture_output=True, text=True).stdout.strip()
            if not buildmod.kernel_up_to_date(head, kbuild) or checked_out != head:
                return {"error": "the build changed under us (another run); not measured"}
            wait0 = time.monotonic()
            with file_lock(kbuild_lock(self.opts.cache), "the kernel build lock"):
                waited = time.monotonic() - wait0
                argv = ["make", f"O={kbuild}", f"-j{self.opts.jobs or os.cpu_count() or 1}",
                        "CC=ccache gcc", "bzImage"]
                mk = timed_make(argv, tree, self.run_dir / "make-noop.log",
                                env=buildmod.ccache_env(self.opts.cache))
        mk["lock_wait_s"] = round(waited, 2)
        return mk

    # -- hot path ----------------------------------------------------------

    def _hotpath(self, src_run: ChildRun | None, base_kernel: Path | None) -> None:
        """In-guest benchmarks on the kernel (and binary) of ``src_run`` (warm or prime)."""
        info: dict[str, Any] = {}
        self.data["steps"]["hotpath"] = info
        if src_run is None:
            self.error("hotpath", "no patched build to benchmark")
            return
        bz, program = src_run.file("kernel/bzImage"), src_run.file("guest/own/hotpath")
        if bz is None or program is None:
            self.error("hotpath", f"no patched kernel or no hotpath binary in {src_run.run_dir} "
                       "(is the selftests/Makefile rule there?)")
            return
        info["patched_kernel"] = str(bz)
        info["program"] = str(program)
        kernels = [("patched", bz)]
        if base_kernel is not None:
            kernels.append(("base", base_kernel))
            info["base_kernel"] = str(base_kernel)
            cfg_p, cfg_b = src_run.file("config"), base_kernel.parent.parent / "config"
            if cfg_p and cfg_b.is_file():
                diff = config_difference(cfg_b, cfg_p)
                info["config_difference"] = diff
        else:
            info["base_kernel"] = None
            info["base_note"] = ("no unpatched base build found (run with --with-base, "
                                 "--base-kernel, or `recharge-harness build --series <empty>` "
                                 "first): no patched/base ratios")
        failures = 0
        merged: dict[str, Any] = {}
        for label, kernel in kernels:
            try:
                boot, runs = self.kernel_bench(label, kernel, program,
                                               self.run_dir / "hotpath" / label)
            except HarnessError as e:
                self.error("hotpath", f"{label}: {e.describe() if hasattr(e, 'describe') else e}")
                continue
            by_sysctl: dict[str, list[dict[str, Any]]] = {}
            for r in runs:
                by_sysctl.setdefault("absent" if r["sysctl"] is None else str(r["sysctl"]),
                                     []).append(r)
                failures += sum(1 for c in r["cases"].values() if c["status"] == "fail")
                if r.get("exit_code") not in (0, 1, 4):
                    self.error("hotpath", f"{label}: program exit {r.get('exit_code')} "
                               f"(timed out: {r.get('timed_out')}), see {r.get('tap')}")
            merged[label] = {k: merge_runs(v) for k, v in by_sysctl.items()}
            info[label] = {"boot": boot, "runs": runs, "merged": merged[label]}
        info["functional_failures"] = failures
        if "patched" in merged:
            info["ratios"] = hot_ratios(merged["patched"], merged.get("base"))
            from harness.stages import insncount
            info["insn_ratios"] = insncount.ratios(merged["patched"], merged.get("base"))

    # -- cold --------------------------------------------------------------

    def _cold(self, src: dict[str, Any]) -> None:
        from harness import gitutil

        info: dict[str, Any] = {}
        self.data["steps"]["cold"] = info
        repo, head = Path(src["repo"]), src["head_commit"]
        tree = self.opts.cache / "bench" / f"cold-tree-{os.getpid()}"
        jobs = self.opts.jobs or os.cpu_count() or 1
        try:
            t0 = time.monotonic()
            gitutil.git(repo, ["worktree", "add", "-f", "--detach", str(tree), head],
                        timeout=1800)
            info["checkout_s"] = round(time.monotonic() - t0, 2)
            info["tree"] = str(tree)
            for profile in COLD_PROFILES:
                kbuild = self.opts.cache / "kbuild" / f"bench-cold-{profile}-{os.getpid()}"
                try:
                    info[profile] = cold_build(self.opts.project, tree, head, kbuild, profile,
                                               self.run_dir, jobs)
                except HarnessError as e:
                    self.error("cold", f"{profile}: {e}")
                finally:
                    shutil.rmtree(kbuild, ignore_errors=True)
                    shutil.rmtree(kbuild.with_name(kbuild.name + ".config-stage"),
                                  ignore_errors=True)
        finally:
            gitutil.git(repo, ["worktree", "remove", "--force", str(tree)], check=False,
                        timeout=600)
            shutil.rmtree(tree, ignore_errors=True)
            gitutil.git(repo, ["worktree", "prune"], check=False)
        t, v = info.get("tiny", {}), info.get("vng-full", {})
        if t.get("build_s") and v.get("build_s") and not t.get("error") and not v.get("error"):
            info["ratio"] = round(t["build_s"] / v["build_s"], 3)
            info["cpu_ratio"] = round((t["cpu_user_s"] + t["cpu_sys_s"])
                                      / max(1e-9, v["cpu_user_s"] + v["cpu_sys_s"]), 3)


def host_facts() -> dict[str, Any]:
    u = os.uname()
    return {"nodename": u.nodename, "kernel": u.release, "cpus": os.cpu_count(),
            "loadavg": list(os.getloadavg()), "python": sys.version.split()[0]}


# ------------------------------------------------------------------ verdicts --


def _fmt(v: Any, unit: str = "s", nd: int = 1) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (int, float)):
        return f"{v:.{nd}f} {unit}".strip()
    return str(v)


def _top(d: dict[str, float], n: int = 4) -> str:
    items = sorted(((k, v) for k, v in d.items() if v is not None), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{k} {v:.1f} s" for k, v in items)


def goals(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal: the measured value, met or not, and what bounds it (from the numbers)."""
    steps = data.get("steps", {})
    out: list[dict[str, Any]] = []
    cold = steps.get("cold", {})
    if cold:
        t, v = cold.get("tiny", {}), cold.get("vng-full", {})
        r = cold.get("ratio")
        bound = ""
        if r is not None and r > GOAL_COLD_RATIO:
            bound = (f"tiny compiles {t.get('cc_count')} files vs {v.get('cc_count')} "
                     f"({t.get('cc_count', 0) / max(1, v.get('cc_count', 1)):.2f}x); most in "
                     + ", ".join(f"{k} {n}" for k, n in list(t.get("cc_by_dir", {}).items())[:6])
                     + f"; CPU ratio {cold.get('cpu_ratio')}")
        out.append({"goal": "cold build tiny / vng-full", "target": f"<= {GOAL_COLD_RATIO}",
                    "value": r, "unit": "x", "met": None if r is None else r <= GOAL_COLD_RATIO,
                    "bound": bound or ("; ".join(e for e in (t.get("error"), v.get("error")) if e)
                                       if r is None else "")})
    warm = steps.get("warm")
    if warm:
        b = warm.get("stages", {}).get("build", {})
        skipped = "skipped" in str(b.get("detail", "")) or b.get("duration_s") == 0.0
        out.append({"goal": "warm rerun skips the build", "target": "make skipped",
                    "value": b.get("duration_s"), "unit": "s",
                    "met": skipped if b else None,
                    "bound": "" if skipped else f"build stage: {b.get('detail', 'not run')}"})
    edit = steps.get("edit", {})
    if edit.get("run"):
        s = edit["run"]
        v = edit.get("verdict_s")
        met = v is not None and v <= GOAL_EDIT_S and s.get("exit_code") in (0, 1)
        bound = ""
        if not met:
            st = {k: float(x.get("duration_s") or 0) for k, x in s.get("stages", {}).items()}
            parts = [f"stages: {_top(st, 5)}"]
            if s.get("outside_stages_s", 0) > 1:
                parts.append(f"outside stages {s['outside_stages_s']:.1f} s "
                             f"(lock waits {s.get('lock_waits_s') or 'none'}, start-up)")
            bp = s.get("build_phases", {})
            if bp.get("compiled_count") is not None:
                kern = bp.get("compiled_kernel", bp.get("compiled", []))
                parts.append(f"build recompiled {len(kern)} kernel file(s) "
                             f"({', '.join(kern[:5])}) + "
                             f"{bp['compiled_count'] - len(kern)} relinked-image file(s)"
                             + (f"; {_top(bp.get('phases_s', {}), 5)}" if bp.get("phases_s")
                                else ""))
            noop = edit.get("make_noop", {})
            if noop.get("duration_s") is not None:
                parts.append(f"a no-op make alone takes {noop['duration_s']:.1f} s")
            for name in ("config", "selftests"):
                d = s.get("stages", {}).get(name, {})
                if d and float(d.get("duration_s") or 0) > 2:
                    parts.append(f"{name}: {d.get('detail', '')[:100]}")
            if s.get("suites"):
                parts.append("suites: " + ", ".join(f"{k} {float(x.get('duration_s') or 0):.0f} s"
                                                    for k, x in s["suites"].items()))
            if s.get("exit_code") not in (0, 1):
                parts.insert(0, f"NO VERDICT (exit {s.get('exit_code')})")
            bound = "; ".join(parts)
        out.append({"goal": "one-line change -> recharge verdict",
                    "target": f"<= {GOAL_EDIT_S:.0f} s", "value": v, "unit": "s", "met": met,
                    "bound": bound})
    boots = boot_samples(data)
    if boots:
        vals = [b["boot_to_ssh_s"] for b in boots]
        med = statistics.median(vals)
        met = med <= GOAL_BOOT_S
        bound = ""
        if not met:
            ph: dict[str, list[float]] = {}
            for b in boots:
                for k, x in b.get("phases_s", {}).items():
                    ph.setdefault(k, []).append(x)
            bound = "median phases: " + ", ".join(
                f"{k} {statistics.median(x):.1f} s" for k, x in ph.items()
                if not k.startswith("first shell"))
        out.append({"goal": "boot -> SSH ready", "target": f"<= {GOAL_BOOT_S:.0f} s",
                    "value": round(med, 2), "unit": "s", "met": met, "bound": bound,
                    "samples": vals})
    for row in steps.get("hotpath", {}).get("ratios", []):
        for key in ("sysctl0", "sysctl1"):
            r = row.get(f"{key}_over_base")
            if r is None:
                continue
            met = bool(row.get(f"{key}_met"))
            bound = ""
            if not met:
                spread = max(row.get(key, {}).get("spread_pct", 0),
                             row.get("base", {}).get("spread_pct", 0))
                best = row.get(f"{key}_over_base_best")
                bound = (f"within the run-to-run spread ({spread:.1f} %): TCG guest on a shared "
                         "host, not a measurable overhead" if row.get(f"{key}_within_noise")
                         else f"outside the spread ({spread:.1f} %): a real slowdown or "
                              "host load between the two boots")
                if best is not None:
                    bound += f"; best-of-n ratio {best:.3f}"
            out.append({"goal": f"hot path {row['case']} patched[{key}] / base",
                        "target": f">= {GOAL_HOT_RATIO}", "value": r, "unit": "x", "met": met,
                        "bound": bound})
    from harness.stages import insncount
    out += insncount.goals(steps.get("hotpath", {}))
    return out


def boot_samples(data: dict[str, Any]) -> list[dict[str, Any]]:
    steps = data.get("steps", {})
    out = []
    for name in ("warm",):
        b = steps.get(name, {}).get("boot")
        if b and b.get("boot_to_ssh_s") is not None:
            out.append({"source": f"{name} run", **b})
    b = steps.get("edit", {}).get("run", {}).get("boot")
    if b and b.get("boot_to_ssh_s") is not None:
        out.append({"source": "edit run", **b})
    for label in ("patched", "base"):
        b = steps.get("hotpath", {}).get(label, {}).get("boot")
        if b and b.get("boot_to_ssh_s") is not None:
            out.append({"source": f"hotpath {label}", **b})
    return out


# ----------------------------------------------------------------- markdown --


def _status(met: bool | None) -> str:
    return "n/a" if met is None else ("met" if met else "**MISSED**")


def render_markdown(data: dict[str, Any]) -> str:
    steps = data.get("steps", {})
    host = data.get("host", {})
    lines = [f"# recharge-harness bench ({data.get('started', '')})", "",
             f"Host {host.get('nodename')} ({host.get('cpus')} CPUs, load "
             f"{', '.join(f'{x:.2f}' for x in host.get('loadavg', []))} at start), "
             f"run dir `{data.get('run_dir')}`. All numbers measured in this run.", "",
             "## Goals", "", "| goal | target | measured | status | what bounds it |",
             "|---|---|---|---|---|"]
    for g in data.get("goals", []):
        val = _fmt(g["value"], g.get("unit", ""), 3 if g.get("unit") == "x" else 1)
        if g.get("samples"):
            val += f" (median of {', '.join(f'{x:.1f}' for x in g['samples'])})"
        lines.append(f"| {g['goal']} | {g['target']} | {val} | {_status(g['met'])} | "
                     f"{g.get('bound') or ''} |")
    lines += ["", "## Measurements", "", "| measurement | value | detail |", "|---|---|---|"]
    cold = steps.get("cold", {})
    for p in COLD_PROFILES:
        c = cold.get(p)
        if c:
            lines.append(f"| (a) cold build {p} ({c.get('base_config')}, no ccache) | "
                         f"{_fmt(c.get('build_s'))} | {c.get('cc_count')} files compiled, CPU "
                         f"{_fmt((c.get('cpu_user_s') or 0) + (c.get('cpu_sys_s') or 0))}, config "
                         f"{_fmt(c.get('config_s'))}, {c.get('options_y')} options =y"
                         + (f", ERROR {c['error']}" if c.get("error") else "")
                         + (f", {len(c['config_problems'])} requested option(s) not in .config"
                            if c.get("config_problems") else "") + " |")
    if cold.get("ratio") is not None:
        lines.append(f"| (a) ratio tiny / vng-full | {cold['ratio']:.3f} | CPU-time ratio "
                     f"{cold.get('cpu_ratio')} |")
    elif "cold" not in steps:
        lines.append("| (a) cold builds | not run | pass `--cold` |")
    for key, title in (("prime", "priming `build`"), ("warm", "(b) warm `run`, nothing changed")):
        s = steps.get(key)
        if s:
            lines.append(f"| {title} | {_fmt(s['wall_s'])} | exit {s['exit_code']}; "
                         + _stage_list(s) + " |")
    w = steps.get("warm", {})
    if w.get("stages", {}).get("build"):
        b = w["stages"]["build"]
        lines.append(f"| (b) warm rerun: build stage | {_fmt(b.get('duration_s'))} | "
                     f"{b.get('detail', '')} |")
    e = steps.get("edit", {})
    if e.get("run"):
        s = e["run"]
        lines.append(f"| (c) one-line change -> recharge verdict | {_fmt(s['wall_s'])} | exit "
                     f"{s['exit_code']}; {_stage_list(s)} |")
        if s.get("suites"):
            lines.append(f"| (c) its suites | {_fmt(s['suites_total_s'])} | " + ", ".join(
                f"{k} {float(x.get('duration_s') or 0):.1f} s ({x.get('status')})"
                for k, x in s["suites"].items()) + " |")
        bp = s.get("build_phases", {})
        if bp:
            kern = bp.get("compiled_kernel", bp.get("compiled", []))
            lines.append(f"| (c) its build: recompiled | {len(kern)} kernel file(s) "
                         f"(+{(bp.get('compiled_count') or 0) - len(kern)} rebuilt by every "
                         f"link) | {', '.join(kern[:8])}; "
                         f"{_phase_list(bp.get('phases_s', {}))} |")
    if e.get("revert_build"):
        r = e["revert_build"]
        bp = r.get("build_phases", {})
        lines.append(f"| (c) revert build (ccache hit) | {_fmt(r['wall_s'])} | "
                     f"{_stage_list(r)}; {bp.get('compiled_count')} recompiled; "
                     f"{_phase_list(bp.get('phases_s', {}))} |")
    if e.get("make_noop", {}).get("duration_s") is not None:
        n = e["make_noop"]
        lines.append(f"| (c) `make bzImage` with nothing to do | {_fmt(n['duration_s'])} | "
                     f"{n.get('cc_count')} CC lines, CPU "
                     f"{_fmt((n.get('cpu_user_s') or 0) + (n.get('cpu_sys_s') or 0))} |")
    for b in boot_samples(data):
        lines.append(f"| (d) boot -> SSH ({b['source']}) | {_fmt(b['boot_to_ssh_s'])} | "
                     f"first command after {_fmt(b.get('boot_to_shell_s'))}; "
                     f"{_phase_list(b.get('phases_s', {}))} |")
    if w.get("suites"):
        lines.append(f"| (e) whole suite duration | {_fmt(w['stages'].get('suites', {}).get('duration_s'))} | "
                     + ", ".join(f"{k} {float(x.get('duration_s') or 0):.1f} s ({x.get('status')})"
                                 for k, x in w["suites"].items()) + " |")
    hp = steps.get("hotpath", {})
    if hp:
        lines += ["", "## In-guest benchmarks (selftests/bench/hotpath.c)", ""]
        if hp.get("base_note"):
            lines += [hp["base_note"], ""]
        if hp.get("config_difference"):
            d = hp["config_difference"]
            lines += [f"Base and patched configs differ in {len(d)} option(s) besides the "
                      f"series' own: {', '.join(d[:8])}{' ...' if len(d) > 8 else ''}", ""]
        lines += ["| case | metric | base | patched sysctl=0 | patched sysctl=1 | "
                  "s0/base | s1/base | s1/s0 |", "|---|---|---|---|---|---|---|---|"]
        for row in hp.get("ratios", []):
            def cell(k: str, row: dict[str, Any] = row) -> str:
                e = row.get(k)
                return (f"{e['median']:.1f} ({e['min']:.0f}-{e['max']:.0f}, +-"
                        f"{e['spread_pct']:.0f} %, n={e['n']})" if e else "n/a")
            lines.append(f"| {row['case']} | {row['metric']} ({row['unit']}) | {cell('base')} | "
                         f"{cell('sysctl0')} | {cell('sysctl1')} | "
                         f"{row.get('sysctl0_over_base', 'n/a')} | "
                         f"{row.get('sysctl1_over_base', 'n/a')} | "
                         f"{row.get('sysctl1_over_sysctl0', 'n/a')} |")
        from harness.stages import insncount
        lines += insncount.markdown(hp)
        loads = [f"{lbl}: {', '.join(f'{x:.1f}' for x in hp[lbl]['boot'][k])}"
                 for lbl in ("patched", "base") for k in ("host_loadavg_after",)
                 if hp.get(lbl, {}).get("boot", {}).get(k)]
        if loads:
            lines += ["", "Host load average (1, 5, 15 min) when each kernel's runs ended: "
                      + "; ".join(loads) + f" on {host.get('cpus')} CPUs (other users' builds "
                      "and VMs): the spread above is mostly that."]
        rc = hp.get("patched", {}).get("merged", {}).get("1", {})
        rows = [(c, m, e) for c, ms in rc.items() if c not in HOT_METRICS
                for m, e in ms.items()]
        if rows:
            lines += ["", "Recharge throughput (patched kernel, sysctl=1):", "",
                      "| case | metric | value |", "|---|---|---|"]
            for c, m, e in rows:
                lines.append(f"| {c} | {m} | {e.get('median')} {e.get('unit', '')}"
                             + (f" (n={e['n']})" if e.get("n", 1) > 1 else "") + " |")
        skipped = sorted({f"{c}: {x['reason']}" for lbl in ("patched", "base")
                          for r in hp.get(lbl, {}).get("runs", [])
                          for c, x in r.get("cases", {}).items()
                          if x["status"] == "skip" and "not selected" not in x["reason"]
                          and "=0" not in x["reason"] and "absent" not in x["reason"]})
        if skipped:
            lines += ["", "Skipped: " + "; ".join(skipped)]
        lines += ["", f"Functional failures in the in-guest benchmarks: "
                      f"{hp.get('functional_failures', 0)}"]
    if data.get("errors"):
        lines += ["", "## Errors", ""] + [f"- {x['step']}: {x['error']}" for x in data["errors"]]
    return "\n".join(lines) + "\n"


def _stage_list(s: dict[str, Any]) -> str:
    st = s.get("stages", {})
    parts = [f"{k} {float(v.get('duration_s') or 0):.1f}" for k, v in st.items()]
    extra = f"; outside stages {s.get('outside_stages_s', 0):.1f}"
    if s.get("lock_waits_s"):
        extra += " (lock waits " + ", ".join(f"{k} {v:.0f} s" for k, v in
                                             s["lock_waits_s"].items()) + ")"
    return "stages (s): " + ", ".join(parts) + extra


def _phase_list(ph: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f} s" for k, v in ph.items())


# --------------------------------------------------------------------- main --


def write_results(data: dict[str, Any], run_dir: Path) -> str:
    from harness.paths import atomic_write

    data["goals"] = goals(data)
    data["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    text = render_markdown(data)
    atomic_write(run_dir / "bench.json", json.dumps(data, indent=2, default=str) + "\n")
    atomic_write(run_dir / "bench.md", text)
    return text


def exit_code(data: dict[str, Any]) -> int:
    if data.get("errors"):
        return EXIT_NO_VERDICT
    if data.get("steps", {}).get("hotpath", {}).get("functional_failures"):
        return EXIT_FAIL
    return EXIT_PASS


def main(opts: "Options", args: argparse.Namespace, runner: ChildRunner | None = None,
         kernel_bench: KernelBench | None = None) -> tuple[int, str]:
    """``bench``: returns (exit code, one line)."""
    from harness.modes.run import make_run_dir

    cfg = BenchConfig.from_args(args)
    run_dir = make_run_dir(opts.out)
    handler = logging.FileHandler(run_dir / "bench.log", encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    run = runner or (lambda label, a, out, lp: rundir.run_child(label, a, out, lp,
                                                                verbose=cfg.verbose))
    bench = Bench(opts, args, cfg, run_dir, run, kernel_bench or default_kernel_bench(opts, cfg))
    log.info("bench: run directory %s (steps: %s%s)", run_dir, ",".join(cfg.steps),
             ", cold" if cfg.cold else "")
    try:
        bench.run()
    except HarnessError as e:
        bench.error("bench", e.describe())
    except KeyboardInterrupt:
        bench.error("bench", "interrupted")
        raise
    finally:
        text = write_results(bench.data, run_dir)
        logging.getLogger().removeHandler(handler)
        handler.close()
    sys.stdout.write(text)
    sys.stdout.flush()
    code = exit_code(bench.data)
    missed = [g["goal"] for g in bench.data.get("goals", []) if g.get("met") is False]
    return code, (f"bench: {run_dir / 'bench.md'} ({len(missed)} goal(s) missed"
                  + (f": {', '.join(missed)}" if missed else "") + ")")
