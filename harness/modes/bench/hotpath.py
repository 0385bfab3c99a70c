"""The in-guest hot path: ``selftests/bench/hotpath.c`` on the patched and base kernels.

The program's KTAP is read with :mod:`harness.parse.ktap` (case statuses) and its
``# bench <case> <metric> k=v ...`` diagnostics; each kernel boots through
:func:`harness.stages.boot.boot`, like a ``run``.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from harness.errors import HarnessError, InfraError
from harness.model import Options
from harness.modes.bench.basekernel import config_difference
from harness.modes.bench.records import HotpathOutput, HotpathRun, HotpathStep, KernelHotpath
from harness.modes.bench.session import KernelBench, Session
from harness.modes.bench.timing import boot_phases
from harness.modes.child import ChildRun
from harness.parse.ktap import CaseStatus, parse_ktap
from harness.stages import boot as bootmod
from harness.stages import insncount

log = logging.getLogger(__name__)

SYSCTL_PATH = "/proc/sys/vm/recharge_offline_memcgs"
#: The hot-path metric of each case that the patched/base ratio is computed on.
HOT_METRICS = {"read_ext4": "read_MiBps", "read_tmpfs": "read_MiBps",
               "fault_ext4": "faults_per_s", "fault_tmpfs": "faults_per_s",
               "mark_accessed_ext4": "alt_reads_per_s"}
GOAL_HOT_RATIO = 0.99  # patched / base throughput on the hot path


def _metric(rest: str) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    for k, v in re.findall(r"(\w+)=(\S+)", rest):
        if k == "samples":
            entry[k] = [float(x) for x in v.split(",") if x]
        elif k == "unit":
            entry[k] = v
        else:
            try:
                entry[k] = float(v)
            except ValueError:
                entry[k] = v
    return entry


def parse_hotpath(text: str) -> HotpathOutput:
    """hotpath's KTAP: case statuses and every ``# bench <case> <metric> k=v...`` line."""
    result = parse_ktap(text, "hotpath")
    out = HotpathOutput()
    diagnostics: list[str] = []
    for case in result.cases:
        diagnostics += case.diagnostics
        if case.missing:
            continue
        status = ("skip" if case.status is CaseStatus.SKIP else
                  "fail" if case.status.failed or case.status is CaseStatus.ERROR else "pass")
        out.cases[case.name] = {"status": status,
                                "reason": case.reason.strip() if status == "skip" else ""}
    for line in diagnostics + list(result.diagnostics):
        parts = line.split(None, 3)
        if len(parts) < 4 or parts[0] != "bench":
            continue
        _, case_name, metric, rest = parts
        if case_name in ("kernel", "sysctl"):
            out.info[case_name] = f"{metric} {rest}"
            continue
        out.metrics.setdefault(case_name, {})[metric] = _metric(rest)
    return out


def stats(samples: list[float]) -> dict[str, Any]:
    if not samples:
        return {"n": 0}
    med = statistics.median(samples)
    return {"median": round(med, 2), "min": round(min(samples), 2), "max": round(max(samples), 2),
            "spread_pct": round(100.0 * (max(samples) - min(samples)) / med, 1) if med else 0.0,
            "n": len(samples), "samples": samples}


def merge_runs(runs: Sequence[HotpathRun | HotpathOutput | dict[str, Any]]
               ) -> dict[str, dict[str, dict[str, Any]]]:
    """Per case and metric, every sample (or value) of ``runs`` (records, or their JSON)
    pooled: median and spread."""
    pooled: dict[str, dict[str, list[float]]] = {}
    units: dict[tuple[str, str], str] = {}
    for r in runs:
        metrics = r.get("metrics", {}) if isinstance(r, dict) else r.metrics
        for case, ms in metrics.items():
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
                insn: insncount.Session | None = None,
                hot_only: bool = False) -> list[HotpathRun]:
    """``rounds`` x (sysctl 0 and 1, ABBA order; or once if the sysctl is absent).

    ``insn``: a :class:`harness.stages.insncount.Session` when the guest runs under the
    instruction-counting plugin (adds ``-i N`` and each run's instruction windows).
    ``hot_only``: every round runs the hot-path cases only (``-H``); otherwise the
    recharge cases run in every round too (they skip at sysctl 0), so that their
    medians pool ``rounds`` samples: one sample of a ~0.2 s recharge scatters by tens of
    percent under TCG.
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
            runs.append(_one_run(guest, program, ktap_dir, label, r, v, reps=reps,
                                 timeout_s=timeout_s, insn=insn, hot_only=hot_only))
    finally:
        if present:
            guest.run(f"echo {current} > {SYSCTL_PATH}", 30)
    return runs


def _one_run(guest: GuestRunner, program: Path, ktap_dir: Path, label: str, r: int,
             v: int | None, *, reps: int, timeout_s: float,
             insn: insncount.Session | None, hot_only: bool = False) -> HotpathRun:
    if v is not None:
        res = guest.run(f"echo {v} > {SYSCTL_PATH} && cat {SYSCTL_PATH}", 30)
        if res.exit_code != 0 or (res.stdout or "").strip() != str(v):
            raise InfraError(f"hotpath: could not set the sysctl to {v}: "
                             f"{(res.stderr or res.error or '').strip()[:160]}")
    argv = [str(program), "-r", str(reps)] + (["-H"] if hot_only else [])
    if insn is not None:
        argv += insn.program_args()
    log.info("bench: hotpath on %s, sysctl %s, round %d", label,
             "absent" if v is None else v, r + 1)
    start = time.monotonic()
    res = guest.run("stdbuf -oL -eL " + shlex.join(argv), timeout_s, cwd="/")
    took = time.monotonic() - start
    name = f"{label}-sysctl{'-absent' if v is None else v}-round{r + 1}"
    tap = ktap_dir / f"{name}.tap"
    tap.write_text(res.stdout or "", encoding="utf-8")
    parsed = parse_hotpath(res.stdout or "")
    run = HotpathRun(label=label, round=r + 1, sysctl=v, exit_code=res.exit_code,
                     duration_s=round(took, 2), timed_out=bool(res.timed_out), tap=str(tap),
                     cases=parsed.cases, metrics=parsed.metrics, info=parsed.info)
    if insn is not None:
        run.insn, windows = insn.collect(res.stdout or "")
        for case, ms in windows.items():
            run.metrics.setdefault(case, {}).update(ms)
    return run


#: How a kernel is booted (harness.stages.boot.boot; the tests inject a fake).
BootFn = Callable[..., Any]


def default_kernel_bench(opts: Options, *, reps: int, rounds: int, insn_windows: int,
                         boot: BootFn = bootmod.boot) -> KernelBench:
    plugin: list[insncount.Plugin] = []  # built once, for the first kernel

    def bench(label: str, bzimage: Path, program: Path, workdir: Path, *,
              timing_only: bool = False) -> tuple[dict[str, Any], list[HotpathRun]]:
        if timing_only:
            return _timing_boot(opts, label, bzimage, program, workdir, reps=reps,
                                rounds=rounds, boot=boot)
        if not plugin:
            plugin.append(insncount.prepare_plugin(opts.cache) if insn_windows else
                          insncount.Plugin(None, "--insn-windows 0"))
            log.info("bench: instruction counts: %s", plugin[0].reason)
        session = insncount.Session(workdir / "insncount.out", insn_windows)
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

        workdir.mkdir(parents=True, exist_ok=True)
        with boot(bzimage, workdir, bootmod.BootSpec.from_options(opts), opts.cache,
                  qemu_opts=qemu_opts) as bg:
            setup = bootmod.guest_setup(bg.guest, opts.project, workdir / "guest-setup.log")
            boot_facts = {"boot_to_ssh_s": bg.boot_to_ssh_s, "boot_to_shell_s": bg.boot_to_shell_s,
                          "accel": bg.accel.accel, "guest_zero_s": bg.guest_zero_s,
                          "guest_setup_exit": setup.exit_code,
                          **boot_phases(bg.vm.console_text(), bg.boot_to_ssh_s,
                                        guest_zero_s=bg.guest_zero_s,
                                        boot_to_shell_s=bg.boot_to_shell_s),
                          "host_loadavg_before": list(os.getloadavg()), "insn_plugin": used}
            runs = run_hotpath(bg.guest, program, workdir / "ktap", label, reps=reps,
                               rounds=rounds,
                               insn=session if plugin[0].ok and not used.get("disabled")
                               else None)
            boot_facts["host_loadavg_after"] = list(os.getloadavg())
            dm = bg.guest.run("dmesg", 60)
            if dm.exit_code == 0:
                (workdir / "dmesg.log").write_text(dm.stdout or "")
            return boot_facts, runs
    return bench


def _timing_boot(opts: Options, label: str, bzimage: Path, program: Path, workdir: Path, *,
                 reps: int, rounds: int, boot: BootFn) -> tuple[dict[str, Any], list[HotpathRun]]:
    """A boot for the wall-clock ratios only: no plugin, the hot-path cases only."""
    workdir.mkdir(parents=True, exist_ok=True)
    with boot(bzimage, workdir, bootmod.BootSpec.from_options(opts), opts.cache) as bg:
        setup = bootmod.guest_setup(bg.guest, opts.project, workdir / "guest-setup.log")
        facts = {"boot_to_ssh_s": bg.boot_to_ssh_s, "accel": bg.accel.accel,
                 "guest_setup_exit": setup.exit_code,
                 "host_loadavg_before": list(os.getloadavg())}
        runs = run_hotpath(bg.guest, program, workdir / "ktap", label, reps=reps,
                           rounds=rounds, hot_only=True)
        facts["host_loadavg_after"] = list(os.getloadavg())
        return facts, runs


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




def run_hotpath_step(s: Session, src_run: ChildRun | None, base_kernel: Path | None) -> None:
    """In-guest benchmarks on the kernel (and binary) of ``src_run`` (warm or prime)."""
    info = HotpathStep()
    s.steps["hotpath"] = info
    if src_run is None:
        s.error("hotpath", "no patched build to benchmark")
        return
    bz, program = src_run.file("kernel/bzImage"), src_run.file("guest/own/hotpath")
    if bz is None or program is None:
        s.error("hotpath", f"no patched kernel or no hotpath binary in {src_run.run_dir} "
                "(is the selftests/Makefile rule there?)")
        return
    info.patched_kernel, info.program = str(bz), str(program)
    kernels = [("patched", bz)]
    if base_kernel is not None:
        kernels.append(("base", base_kernel))
        info.base_kernel = str(base_kernel)
        cfg_p, cfg_b = src_run.file("config"), base_kernel.parent.parent / "config"
        if cfg_p and cfg_b.is_file():
            info.config_difference = config_difference(cfg_b, cfg_p)
    else:
        info.base_note = ("no unpatched base build found (run with --with-base, "
                          "--base-kernel, or `recharge-harness build --series <empty>` "
                          "first): no patched/base ratios")
    failures = 0
    timing: dict[str, list[HotpathRun]] = {}
    for n, (label, kernel) in _boot_order(kernels, s.cfg.boots):
        workdir = s.run_dir / "hotpath" / (label if n == 0 else f"{label}-boot{n + 1}")
        try:
            boot, runs = s.kernel_bench(label, kernel, program, workdir, timing_only=n > 0)
        except HarnessError as e:
            s.error("hotpath", f"{label} (boot {n + 1}): {e.describe()}")
            continue
        for r in runs:
            failures += r.failures()
            if r.exit_code not in (0, 1, 4):
                s.error("hotpath", f"{label}: program exit {r.exit_code} "
                        f"(timed out: {r.timed_out}), see {r.tap}")
        if n == 0:
            info.kernels[label] = KernelHotpath(boot, runs, _merge_by_sysctl(runs))
        elif label in info.kernels:
            kh = info.kernels[label]
            kh.timing_boots = (kh.timing_boots or []) + [boot]
            timing.setdefault(label, []).extend(runs)
    for label, runs in timing.items():
        info.kernels[label].timing_merged = _merge_by_sysctl(runs)
    info.functional_failures = failures
    if "patched" in info.kernels:
        patched, base = info.kernels["patched"], info.kernels.get("base")
        info.ratios = hot_ratios(_wall(patched), _wall(base) if base else None)
        if patched.timing_merged is not None:
            info.wall_note = (f"wall-clock ratios from {s.cfg.boots - 1} interleaved boot(s) "
                              "of each kernel without the instruction-counting plugin "
                              "(hot-path cases only), pooled")
        info.insn_ratios = insncount.ratios(patched.merged, base.merged if base else None)


def _boot_order(kernels: list[tuple[str, Path]], boots: int
                ) -> list[tuple[int, tuple[str, Path]]]:
    """A B A B ...: every kernel's n-th boot before any kernel's (n+1)-th."""
    return [(n, k) for n in range(boots) for k in kernels]


def _merge_by_sysctl(runs: list[HotpathRun]) -> dict[str, Any]:
    by_sysctl: dict[str, list[HotpathRun]] = {}
    for r in runs:
        by_sysctl.setdefault("absent" if r.sysctl is None else str(r.sysctl), []).append(r)
    return {k: merge_runs(v) for k, v in by_sysctl.items()}


def _wall(k: KernelHotpath) -> dict[str, Any]:
    """The samples for wall-clock ratios: the plugin-free boots when there were some."""
    return k.timing_merged if k.timing_merged is not None else k.merged
