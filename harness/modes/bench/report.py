"""``bench.md`` and the goals: read from the ``bench.json`` document a run produced.

Every goal row says the measured value, whether it was met, and what bounds it (from
the numbers of the same run); nothing is hard-coded but the goals themselves.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from harness.errors import EXIT_FAIL, EXIT_NO_VERDICT, EXIT_PASS
from harness.modes.bench.cold import COLD_PROFILES, GOAL_COLD_RATIO
from harness.modes.bench.hotpath import GOAL_HOT_RATIO, HOT_METRICS
from harness.paths import atomic_write
from harness.stages import insncount

GOAL_EDIT_S = 60.0  # one-line change in mm/memcontrol.c -> verdict
GOAL_BOOT_S = 10.0  # boot -> SSH ready
GOAL_FIRST_COMMAND_S = 0.5  # SSH ready -> the first command done (the persistent shell)


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
    out += _cold_goal(steps.get("cold", {}))
    out += _warm_goal(steps.get("warm"))
    out += _edit_goal(steps.get("edit", {}))
    out += _boot_goal(boot_samples(data))
    out += _first_command_goal(boot_samples(data))
    out += _hot_goals(steps.get("hotpath", {}))
    out += _deferred_goals(steps.get("hotpath", {}))
    out += insncount.goals(steps.get("hotpath", {}))
    return out


def _cold_goal(cold: dict[str, Any]) -> list[dict[str, Any]]:
    if not cold:
        return []
    t, v = cold.get("tiny", {}), cold.get("vng-full", {})
    r = cold.get("ratio")
    bound = ""
    if r is not None and r > GOAL_COLD_RATIO:
        bound = (f"tiny compiles {t.get('cc_count')} files vs {v.get('cc_count')} "
                 f"({t.get('cc_count', 0) / max(1, v.get('cc_count', 1)):.2f}x); most in "
                 + ", ".join(f"{k} {n}" for k, n in list(t.get("cc_by_dir", {}).items())[:6])
                 + f"; CPU ratio {cold.get('cpu_ratio')}")
    return [{"goal": "cold build tiny / vng-full", "target": f"<= {GOAL_COLD_RATIO}",
             "value": r, "unit": "x", "met": None if r is None else r <= GOAL_COLD_RATIO,
             "bound": bound or ("; ".join(e for e in (t.get("error"), v.get("error")) if e)
                                if r is None else "")}]


def _warm_goal(warm: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not warm:
        return []
    b = warm.get("stages", {}).get("build", {})
    skipped = "skipped" in str(b.get("detail", "")) or b.get("duration_s") == 0.0
    return [{"goal": "warm rerun skips the build", "target": "make skipped",
             "value": b.get("duration_s"), "unit": "s", "met": skipped if b else None,
             "bound": "" if skipped else f"build stage: {b.get('detail', 'not run')}"}]


def _edit_goal(edit: dict[str, Any]) -> list[dict[str, Any]]:
    if not edit.get("run"):
        return []
    s = edit["run"]
    v = edit.get("verdict_s")
    met = v is not None and v <= GOAL_EDIT_S and s.get("exit_code") in (0, 1)
    return [{"goal": "one-line change -> recharge verdict", "target": f"<= {GOAL_EDIT_S:.0f} s",
             "value": v, "unit": "s", "met": met, "bound": "" if met else _edit_bound(edit)}]


def _edit_bound(edit: dict[str, Any]) -> str:
    """Where the edit's time went: stages, lock waits, what the build recompiled."""
    s = edit["run"]
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
                     + (f"; {_top(bp.get('phases_s', {}), 5)}" if bp.get("phases_s") else ""))
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
    return "; ".join(parts)


def _first_command_goal(boots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """SSH ready -> first command done: a new SSH session (sshd, root's login shell)
    opening the persistent shell and running its first command."""
    vals = [round(b["boot_to_shell_s"] - b["boot_to_ssh_s"], 2) for b in boots
            if b.get("boot_to_shell_s") is not None and b.get("boot_to_ssh_s") is not None]
    if not vals:
        return []
    med = statistics.median(vals)
    met = med <= GOAL_FIRST_COMMAND_S
    return [{"goal": "SSH ready -> first command done",
             "target": f"<= {GOAL_FIRST_COMMAND_S} s", "value": round(med, 2), "unit": "s",
             "met": met, "samples": vals,
             "bound": "" if met else "sshd's session set-up and the login shell's "
                                     "fork/exec under emulation (no start-up file is read)"}]


def _boot_goal(boots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not boots:
        return []
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
    return [{"goal": "boot -> SSH ready", "target": f"<= {GOAL_BOOT_S:.0f} s",
             "value": round(med, 2), "unit": "s", "met": met, "bound": bound, "samples": vals}]


GOAL_DEFERRED_RATIO = 0.5  # deferred recharge throughput / the offline worker's


def _deferred_goals(hp: dict[str, Any]) -> list[dict[str, Any]]:
    """Deferred throughput (one read pass by the new owner) over the offline worker's on
    the same file system.  Judged at each path's own pace: the deferred path from its
    first read on, net of a plain read pass of the same file (the read happens anyway),
    against the worker from its first move on (it starts after a deliberate batching
    delay); both polled every 5 ms.  The gross ratio (the read
    and the delay included) is shown beside it."""
    m = hp.get("patched", {}).get("merged", {}).get("1", {})
    out = []
    for fs, worker_case in (("ext4", "offline_mapped_ext4"), ("shmem", "offline_mapped_shmem")):
        wm = m.get(worker_case, {})
        worker = wm.get("offline_worker_MiBps", {}).get("median")
        active = wm.get("offline_worker_active_MiBps", {}).get("median")
        d = m.get(f"deferred_read_{fs}", {})
        gross = d.get("deferred_MiBps", {}).get("median")
        net = d.get("deferred_net_MiBps", {}).get("median")
        if not worker or gross is None:
            continue
        gross_r = gross / worker
        if net is not None and active:
            r = round(net / active, 3)
            basis = (f"net {net:.0f} MiB/s (plain read pass "
                     f"{d.get('plain_read_pass_ms', {}).get('median')} ms) vs the worker's "
                     f"{active:.0f} MiB/s from its first move "
                     f"({wm.get('worker_first_move_ms', {}).get('median')} ms)")
        else:
            r = round(gross_r, 3)
            basis = "gross only (no plain read pass or no first-move time measured)"
        out.append({"goal": f"deferred recharge / offline worker ({fs})",
                    "target": f">= {GOAL_DEFERRED_RATIO}", "value": r, "unit": "x",
                    "met": r >= GOAL_DEFERRED_RATIO,
                    "bound": f"{basis}; gross {gross:.0f} vs {worker:.0f} MiB/s = "
                             f"{gross_r:.2f}x"})
    return out


def _hot_goals(hp: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for row in hp.get("ratios", []):
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
    lines += _measurements(data)
    hp = steps.get("hotpath", {})
    if hp:
        lines += _hotpath_section(hp, host)
    if data.get("errors"):
        lines += ["", "## Errors", ""] + [f"- {x['step']}: {x['error']}" for x in data["errors"]]
    return "\n".join(lines) + "\n"




def _measurements(data: dict[str, Any]) -> list[str]:
    """The rows of the measurements table."""
    steps = data.get("steps", {})
    lines: list[str] = []
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
    lines += _edit_rows(steps.get("edit", {}))
    for b in boot_samples(data):
        lines.append(f"| (d) boot -> SSH ({b['source']}) | {_fmt(b['boot_to_ssh_s'])} | "
                     f"first command after {_fmt(b.get('boot_to_shell_s'))}; "
                     f"{_phase_list(b.get('phases_s', {}))} |")
    if w.get("suites"):
        lines.append(f"| (e) whole suite duration | {_fmt(w['stages'].get('suites', {}).get('duration_s'))} | "
                     + ", ".join(f"{k} {float(x.get('duration_s') or 0):.1f} s ({x.get('status')})"
                                 for k, x in w["suites"].items()) + " |")
    return lines


def _edit_rows(e: dict[str, Any]) -> list[str]:
    lines: list[str] = []
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
    return lines


def _hotpath_section(hp: dict[str, Any], host: dict[str, Any]) -> list[str]:
    """The in-guest benchmarks: ratios, instruction counts, recharge throughput."""
    lines: list[str] = []
    lines += ["", "## In-guest benchmarks (selftests/bench/hotpath.c)", ""]
    if hp.get("base_note"):
        lines += [hp["base_note"], ""]
    if hp.get("wall_note"):
        lines += [f"Time ratios: {hp['wall_note']}; instruction counts from the first "
                  "boot of each.", ""]
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
    return lines


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


