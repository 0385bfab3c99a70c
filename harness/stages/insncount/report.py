"""The instruction-count section of ``bench.md``."""

from __future__ import annotations

from typing import Any

from harness.stages.insncount.stats import GOAL_HOT_RATIO


def markdown(hotpath: dict[str, Any]) -> list[str]:
    """The instruction-count section of bench.md (or why there is none)."""
    plug = {}
    for label in ("patched", "base"):
        p = hotpath.get(label, {}).get("boot", {}).get("insn_plugin")
        if p:
            plug = p
            break
    if not plug:
        return []
    lines = ["", "### Guest instructions (QEMU TCG plugin, `harness/stages/insncount_plugin.c`)", ""]
    if not plug.get("available") or plug.get("disabled"):
        lines.append(f"Not measured: {plug.get('reason')}. The ratios above are by time only.")
        return lines
    lines += [f"Plugin: {plug.get('reason')}; {plug.get('qemu')}. Fixed work per window "
              "(one pass over the file; mark_accessed: N one-byte preads); the count is the "
              "instructions the vCPU running the program executed between the two markers "
              "(program, kernel on its behalf, interrupts). Lower is better; the goal is "
              f"base / patched >= {GOAL_HOT_RATIO}.", "",
              "| case | metric | base | patched sysctl=0 | patched sysctl=1 | s0/base | "
              "s1/base | s1/s0 | s1-s0 |", "|---|---|---|---|---|---|---|---|---|"]

    def cell(e: dict[str, Any] | None) -> str:
        if not e:
            return "n/a"
        return f"{e['median']:.1f} (+-{e['spread_pct']:.3f} %, n={e['n']})"

    def r(v: Any) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    for row in hotpath.get("insn_ratios", []):
        d = row.get("sysctl1_minus_sysctl0")
        lines.append(f"| {row['case']} | {row['metric']} | {cell(row.get('base'))} | "
                     f"{cell(row.get('sysctl0'))} | {cell(row.get('sysctl1'))} | "
                     f"{r(row.get('sysctl0_over_base'))} | {r(row.get('sysctl1_over_base'))} | "
                     f"{r(row.get('sysctl1_over_sysctl0'))} | "
                     f"{'n/a' if d is None else f'{d:+.1f}'} |")
    probs = sorted({p for label in ("patched", "base")
                    for run in hotpath.get(label, {}).get("runs", [])
                    for p in run.get("insn", {}).get("problems", [])})
    if probs:
        lines += ["", "Windows left out: " + "; ".join(probs)]
    return lines
