"""Instruction ratios: patched / base and sysctl 1 / 0 per case and metric, and the goals
they are judged by (base / patched instructions >= 0.99)."""

from __future__ import annotations

import statistics
from typing import Any

#: Per case, the instruction metric the patched / base goal is judged on: guest
#: instructions per unit of fixed work (lower is better; throughput ~ 1 / it).
INSN_METRICS = {"read_ext4": "insns_per_page", "read_tmpfs": "insns_per_page",
                "fault_ext4": "insns_per_page", "fault_tmpfs": "insns_per_page",
                "mark_accessed_ext4": "insns_per_read_alt"}
#: Shown too, not judged.
INSN_EXTRA = {"mark_accessed_ext4": ("insns_per_read_same", "insns_per_mark")}
GOAL_HOT_RATIO = 0.99  # the same goal as bench.GOAL_HOT_RATIO, on 1 / (insn ratio)


def insn_stats(samples: list[float]) -> dict[str, Any]:
    """Like bench.stats, with the precision instruction counts deserve."""
    if not samples:
        return {"n": 0}
    med = statistics.median(samples)
    return {"median": round(med, 3), "min": round(min(samples), 3),
            "max": round(max(samples), 3),
            "spread_pct": round(100.0 * (max(samples) - min(samples)) / abs(med), 4)
            if med else 0.0, "n": len(samples)}


def _samples(merged: dict[str, Any] | None, sysctl: str, case: str, metric: str) -> list[float]:
    if not merged:
        return []
    return list(merged.get(sysctl, {}).get(case, {}).get(metric, {}).get("samples") or [])


def ratios(patched: dict[str, Any], base: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per case and instruction metric: patched / base and sysctl 1 / 0.

    ``patched``/``base``: bench's merged runs ({sysctl: {case: {metric: stats}}});
    the base kernel has no sysctl ("absent").  ``*_over_base`` is the instruction
    ratio (> 1: the patched kernel executes more); ``*_throughput`` its inverse,
    the number the >= 0.99 goal is about.
    """
    rows = []
    bkey = None
    if base:
        bkey = "absent" if "absent" in base else ("0" if "0" in base else None)
    metrics = [(c, m, True) for c, m in INSN_METRICS.items()]
    metrics += [(c, m, False) for c, ms in INSN_EXTRA.items() for m in ms]
    for case, metric, judged in metrics:
        s0 = _samples(patched, "0", case, metric)
        s1 = _samples(patched, "1", case, metric)
        if not s0 and not s1:
            s0 = _samples(patched, "absent", case, metric)
        b = _samples(base, bkey, case, metric) if bkey else []
        if not (s0 or s1 or b):
            continue
        row: dict[str, Any] = {"case": case, "metric": metric, "judged": judged}
        for key, vals in (("sysctl0", s0), ("sysctl1", s1), ("base", b)):
            if vals:
                row[key] = insn_stats(vals)
        if s0 and s1 and row["sysctl0"]["median"]:
            row["sysctl1_over_sysctl0"] = round(row["sysctl1"]["median"]
                                                / row["sysctl0"]["median"], 5)
            row["sysctl1_minus_sysctl0"] = round(row["sysctl1"]["median"]
                                                 - row["sysctl0"]["median"], 3)
        if b and row["base"]["median"] > 0:
            for key in ("sysctl0", "sysctl1"):
                e = row.get(key)
                if not e or e["median"] <= 0:
                    continue
                r = e["median"] / row["base"]["median"]
                row[f"{key}_over_base"] = round(r, 5)
                row[f"{key}_minus_base"] = round(e["median"] - row["base"]["median"], 3)
                row[f"{key}_throughput"] = round(1 / r, 5)
                row[f"{key}_met"] = 1 / r >= GOAL_HOT_RATIO
        rows.append(row)
    return rows


def goals(hotpath: dict[str, Any]) -> list[dict[str, Any]]:
    """Goal rows for bench.md: base / patched instructions >= 0.99 per judged case."""
    out = []
    for row in hotpath.get("insn_ratios", []):
        if not row.get("judged"):
            continue
        for key in ("sysctl0", "sysctl1"):
            t = row.get(f"{key}_throughput")
            if t is None:
                continue
            spread = max(row.get(key, {}).get("spread_pct", 0),
                         row.get("base", {}).get("spread_pct", 0))
            bound = "" if row.get(f"{key}_met") else (
                f"{row[f'{key}_minus_base']:+.1f} {row['metric'].replace('insns_per_', 'insns/')}"
                f" vs base (run-to-run spread {spread:.3f} %): executed instructions, "
                "not host noise")
            out.append({"goal": f"hot path {row['case']} patched[{key}] / base "
                                "(guest instructions)",
                        "target": f">= {GOAL_HOT_RATIO}", "value": t, "unit": "x",
                        "met": bool(row.get(f"{key}_met")), "bound": bound})
    return out
