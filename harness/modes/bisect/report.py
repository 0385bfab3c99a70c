"""``summary.txt`` of a bisection: the first bad commit with its evidence, every step."""

from __future__ import annotations

from pathlib import Path

from harness.modes.bisect.state import LOG_FILE, BisectState, Outcome


def _dur(s: float) -> str:
    return f"{int(s) // 60}m{int(s) % 60:02d}s" if s >= 60 else f"{s:.1f}s"


def render(state: BisectState, outcome: Outcome, run_dir: Path) -> str:
    lines = []
    if outcome.status == "found" and outcome.first_bad:
        fb = outcome.first_bad
        lines.append(f"bisect: first bad commit {fb['commit']} {fb.get('subject', '')}")
        bad = [a for a in fb.get("attempts", []) if a.get("verdict") != "good"]
        ev = bad[0] if bad else None
        if ev is not None:
            lines.append(f"  verdict: {ev['verdict']}: {ev['detail']}")
            e = ev.get("evidence", {})
            for c in e.get("failed_cases", [])[:5]:
                lines.append(f"  failed:  {c}")
            for sig in e.get("signatures", [])[:5]:
                lines.append(f"  kernel log: {sig}")
            if e.get("run_dir"):
                lines.append(f"  run:     {e['run_dir']}")
    else:
        lines.append(f"bisect: {outcome.status.upper()}: {outcome.detail}")
    lines += ["", f"{'step':<12} {'commit':<12}  {'verdict':<14} {'git':<6} {'tries':<5} "
                  f"{'time':>7}  subject"]
    for r in outcome.steps:
        if not r.get("verdict"):
            continue
        tries = len(r.get("attempts", [])) or "-"
        flag = " (flaky)" if r.get("flaky") else (" (cached)" if r.get("cached") else "")
        lines.append(f"{r['role']:<12} {r['commit'][:12]:<12}  {r['verdict']:<14} "
                     f"{r['action']:<6} {tries!s:<5} {_dur(r.get('duration_s', 0.0)):>7}  "
                     f"{r.get('subject', '')[:60]}{flag}")
    n = sum(1 for r in outcome.steps if r.get("verdict") and not r.get("cached"))
    lines += ["", f"{n} commit(s) evaluated in {_dur(outcome.duration_s)}; "
                  f"range {state.good[:12]}..{state.bad[:12]}",
              f"log: {run_dir / LOG_FILE} (replay in a clone: git bisect replay "
              f"{run_dir / LOG_FILE}); steps: {run_dir / 'bisect.json'}"]
    return "\n".join(lines) + "\n"
