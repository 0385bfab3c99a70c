""":func:`verify`: did every requested value land in the final ``.config``, and if not,
why (the dependency with the current value of every symbol it mentions)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.stages.kconfig.expr import eval_expr, expr_symbols, tri
from harness.stages.kconfig.fragments import NOT_SET, Requested
from harness.stages.kconfig.index import KconfigIndex, defined_anywhere


@dataclass(frozen=True)
class Problem:
    symbol: str
    requested: str
    actual: str | None
    fragment: Path
    reason: str
    fatal: bool = True

    def describe(self) -> str:
        actual = "absent" if self.actual is None else (
            "is not set" if self.actual == NOT_SET else self.actual)
        return (f"CONFIG_{self.symbol}={self.requested} (from {self.fragment.name}) "
                f"is {actual} in the final .config: {self.reason}")


def _show(v: str | None) -> str:
    return "n" if v is None or v == NOT_SET else v


def explain(symbol: str, config: dict[str, str], index: KconfigIndex) -> str:
    defs = index.symbols.get(symbol, [])
    if not defs:
        return "no Kconfig file for this architecture defines it"
    reasons = []
    for d in defs:
        unmet = [e for e in d.depends if eval_expr(e, config) == 0]
        where = f"{d.file}:{d.line}"
        if unmet:
            parts = []
            for e in unmet:
                vals = ", ".join(f"{s}={_show(config.get(s))}" for s in expr_symbols(e))
                parts.append(f"'{e}'" + (f" [{vals}]" if vals else ""))
            reasons.append(f"unmet dependency {'; '.join(parts)} ({where})")
        elif not d.has_prompt:
            sel = index.selectors(symbol)
            names = ", ".join(f"{s}={_show(config.get(s))}" for s, _ in sel[:8]) or "nothing"
            reasons.append(f"has no prompt, only set by select from: {names} ({where})")
        elif d.in_choice:
            reasons.append(f"is a choice member; another choice value won ({where})")
        else:
            reasons.append(f"dependencies are met; check the value's range/type ({where})")
    return "; ".join(dict.fromkeys(reasons))


def explain_forced_on(symbol: str, config: dict[str, str], index: KconfigIndex) -> str:
    sel = [(s, c) for s, c in index.selectors(symbol) if tri(config.get(s)) > 0
           and (c is None or eval_expr(c, config) > 0)]
    if sel:
        return "selected by " + ", ".join(f"{s}={config.get(s)}" for s, _ in sel[:8])
    defs = index.symbols.get(symbol, [])
    if defs and not any(d.has_prompt for d in defs):
        return "has no prompt (its default decides)"
    return "its default or a dependency forces it on"


def verify(
    final: dict[str, str],
    requested: dict[str, Requested],
    tree: Path,
    *,
    unknown_is_error: bool = True,
    index: KconfigIndex | None = None,
) -> list[Problem]:
    """Every requested value present in ``final``? Explain each one that is not."""
    problems: list[Problem] = []
    idx = index
    for sym, req in requested.items():
        actual = final.get(sym)
        if req.value == NOT_SET:
            if actual in (None, NOT_SET):
                continue
        elif actual == req.value:
            continue
        elif req.value == "m" and actual == "y" and final.get("MODULES") in (None, NOT_SET):
            continue  # tristate asked as module, built in because MODULES is off
        if idx is None:
            idx = KconfigIndex(tree)
        if not idx.defined(sym) and not defined_anywhere(tree, sym):
            problems.append(Problem(sym, req.value, actual, req.fragment,
                                    "unknown to this tree (no Kconfig file defines it)",
                                    fatal=unknown_is_error))
            continue
        if req.value == NOT_SET:
            reason = explain_forced_on(sym, final, idx)
        else:
            reason = explain(sym, final, idx)
        problems.append(Problem(sym, req.value, actual, req.fragment, reason))
    return problems
