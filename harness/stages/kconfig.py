"""The Kconfig language, as far as verifying a ``.config`` needs it.

``.config`` and fragment files, the options fragments request, an index of the tree's
Kconfig files (``depends on``, ``select``, prompts), ``depends on`` expressions, and
:func:`verify`: did every requested value land, and if not, why (the dependency with
the current value of every symbol it mentions).  No I/O but reading the tree.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from harness.errors import ConfigError

log = logging.getLogger(__name__)

ARCH = "x86"
NOT_SET = "n"

_SET_RE = re.compile(r"^CONFIG_([A-Za-z0-9_]+)=(.*)$")
_UNSET_RE = re.compile(r"^# CONFIG_([A-Za-z0-9_]+) is not set$")

def parse_config(text: str) -> dict[str, str]:
    """``.config`` or fragment text -> {SYMBOL: value}; "is not set" -> "n"."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        m = _SET_RE.match(line)
        if m:
            values[m.group(1)] = m.group(2)
            continue
        m = _UNSET_RE.match(line)
        if m:
            values[m.group(1)] = NOT_SET
    return values


@dataclass(frozen=True)
class Fragment:
    path: Path
    options: dict[str, str]

    @classmethod
    def load(cls, path: Path) -> "Fragment":
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"config fragment {path}: {e.strerror}") from e
        for lineno, line in enumerate(text.splitlines(), 1):
            s = line.strip()
            if not s or (s.startswith("#") and not s.startswith("# CONFIG_")):
                continue
            if not (_SET_RE.match(s) or _UNSET_RE.match(s)):
                raise ConfigError(f"{path}:{lineno}: not a CONFIG_ line: {s!r}")
        return cls(path=path, options=parse_config(text))


@dataclass(frozen=True)
class Requested:
    symbol: str
    value: str
    fragment: Path


def requested_options(fragments: Iterable[Fragment]) -> tuple[dict[str, Requested], list[str]]:
    """Merge fragments in order (last wins, like merge_config.sh); report overrides."""
    merged: dict[str, Requested] = {}
    notes: list[str] = []
    for frag in fragments:
        for sym, val in frag.options.items():
            prev = merged.get(sym)
            if prev is not None and prev.value != val:
                notes.append(
                    f"CONFIG_{sym}: {prev.fragment.name} asks {prev.value}, "
                    f"{frag.path.name} overrides with {val}"
                )
            merged[sym] = Requested(sym, val, frag.path)
    return merged, notes


# ------------------------------------------------------------ Kconfig index --


@dataclass
class SymbolDef:
    name: str
    file: str
    line: int
    depends: list[str] = field(default_factory=list)  # own + inherited (if/menu/choice)
    has_prompt: bool = False
    selects: list[tuple[str, str | None]] = field(default_factory=list)  # (symbol, if-expr)
    in_choice: bool = False


_KEYWORDS = ("config", "menuconfig", "choice", "endchoice", "if", "endif", "menu", "endmenu",
             "source", "rsource", "osource", "orsource", "comment", "mainmenu")
_PROMPT_TYPES = ("bool", "tristate", "string", "hex", "int", "prompt")


class KconfigIndex:
    """Every ``config`` entry reachable from ``<tree>/Kconfig`` for x86."""

    def __init__(self, tree: Path, arch: str = ARCH):
        self.tree = tree
        self.arch = arch
        self.symbols: dict[str, list[SymbolDef]] = {}
        self._visited: set[Path] = set()
        self._parse_file(tree / "Kconfig", [], optional=False)

    def _expand(self, path: str) -> str | None:
        path = (path.replace("$(SRCARCH)", self.arch).replace("$(HEADER_ARCH)", self.arch)
                .replace("$(ARCH)", self.arch).replace("$(srctree)/", ""))
        return None if "$(" in path else path

    def _parse_file(self, path: Path, outer: list[str], optional: bool) -> None:
        if path in self._visited:
            return
        self._visited.add(path)
        try:
            raw_lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            if not optional:
                log.debug("kconfig: cannot read %s", path)
            return
        rel = str(path.relative_to(self.tree)) if path.is_relative_to(self.tree) else str(path)
        # Join backslash continuations, keep line numbers of the first line.
        lines: list[tuple[int, str]] = []
        buf, start = "", 0
        for i, l in enumerate(raw_lines, 1):
            if not buf:
                start = i
            if l.endswith("\\"):
                buf += l[:-1] + " "
                continue
            lines.append((start, buf + l))
            buf = ""
        # Block stack: ("if"|"menu"|"choice", [conditions]); a menu's/choice's own
        # "depends on" lines are appended to its condition list as we see them.
        stack: list[tuple[str, list[str]]] = []
        current: SymbolDef | None = None
        block_for_deps: list[str] | None = None  # menu/choice whose deps we are reading
        help_indent: int | None = None

        def conds() -> list[str]:
            return outer + [c for _, cs in stack for c in cs]

        for lineno, line in lines:
            stripped = line.strip()
            indent = len(line) - len(line.lstrip())
            if help_indent is not None:
                if not stripped or indent > help_indent:
                    continue
                help_indent = None
            if not stripped or stripped.startswith("#"):
                continue
            word, _, rest = stripped.partition(" ")
            rest = rest.strip()
            if word in _KEYWORDS:
                current = None
                block_for_deps = None
            if word in ("config", "menuconfig"):
                current = SymbolDef(rest, rel, lineno, depends=list(conds()),
                                    in_choice=any(k == "choice" for k, _ in stack))
                self.symbols.setdefault(rest, []).append(current)
            elif word == "if":
                stack.append(("if", [rest]))
            elif word in ("menu", "choice"):
                stack.append((word, []))
                block_for_deps = stack[-1][1]
            elif word in ("endif", "endmenu", "endchoice"):
                want = {"endif": "if", "endmenu": "menu", "endchoice": "choice"}[word]
                while stack:
                    kind, _ = stack.pop()
                    if kind == want:
                        break
            elif word in ("source", "rsource", "osource", "orsource"):
                m = re.match(r'"([^"]+)"', rest)
                if not m:
                    continue
                target = self._expand(m.group(1))
                if target is None:
                    continue
                base = path.parent if word in ("rsource", "orsource") else self.tree
                optional = word.startswith("o")
                if "*" in target:
                    for p in sorted(base.glob(target)):
                        self._parse_file(p, conds(), optional=True)
                else:
                    self._parse_file(base / target, conds(), optional=optional)
            elif word in ("help", "---help---"):
                help_indent = indent
            elif stripped.startswith("depends on"):
                expr = " ".join(stripped[len("depends on"):].split())
                if current is not None:
                    current.depends.append(expr)
                elif block_for_deps is not None:
                    block_for_deps.append(expr)
            elif current is not None:
                if word in _PROMPT_TYPES or word.startswith("def_"):
                    if word == "prompt" or (word in _PROMPT_TYPES and rest.startswith('"')):
                        current.has_prompt = True
                elif word == "select" or word == "imply":
                    if word == "select":
                        target_sym, _, cond = rest.partition(" if ")
                        current.selects.append((target_sym.strip(), cond.strip() or None))

    def defined(self, symbol: str) -> bool:
        return symbol in self.symbols

    def selectors(self, symbol: str) -> list[tuple[str, str | None]]:
        out = []
        for name, defs in self.symbols.items():
            for d in defs:
                for target, cond in d.selects:
                    if target == symbol:
                        out.append((name, cond))
        return out


def defined_anywhere(tree: Path, symbol: str) -> bool:
    """Fallback existence check over every Kconfig* file (arch-independent)."""
    rx = re.compile(rf"^\s*(?:menu)?config\s+{re.escape(symbol)}\s*$", re.M)
    for root, _dirs, files in os.walk(tree):
        if "/.git" in root:
            continue
        for f in files:
            if f.startswith("Kconfig"):
                try:
                    if rx.search(Path(root, f).read_text(encoding="utf-8", errors="replace")):
                        return True
                except OSError:
                    continue
    return False


# --------------------------------------------------------- expression eval --

_TOKEN_RE = re.compile(r'\s*(&&|\|\||!=|<=|>=|[!=<>()]|"[^"]*"|\$\([^)]*\)|[A-Za-z0-9_.\-]+)')


def _tokens(expr: str) -> list[str]:
    toks, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN_RE.match(expr, pos)
        if not m:
            break
        toks.append(m.group(1))
        pos = m.end()
    return toks


def _tri(value: str | None) -> int:
    return {"y": 2, "m": 1}.get(value or "n", 0)


def eval_expr(expr: str, config: dict[str, str]) -> int:
    """Kconfig tristate value of ``expr`` (0 n, 1 m, 2 y); unknown macros count as y."""
    toks = _tokens(expr)
    pos = 0

    def value_of(tok: str) -> str:
        if tok.startswith('"'):
            return tok.strip('"')
        if tok in ("y", "m", "n"):
            return tok
        if tok.startswith("$("):
            return "y"
        if tok[:1].isdigit() or tok.startswith("-"):
            return tok  # a number literal
        return config.get(tok, "n")

    def primary() -> int:
        nonlocal pos
        if pos >= len(toks):
            return 2
        tok = toks[pos]
        pos += 1
        if tok == "!":
            return 2 - primary()
        if tok == "(":
            v = or_expr()
            if pos < len(toks) and toks[pos] == ")":
                pos += 1
            return v
        if pos < len(toks) and toks[pos] in ("=", "!=", "<", "<=", ">", ">="):
            op = toks[pos]
            rhs = toks[pos + 1] if pos + 1 < len(toks) else ""
            pos += 2
            a, b = value_of(tok), value_of(rhs)
            if op in ("=", "!="):
                eq = a == b
                return 2 if (eq if op == "=" else not eq) else 0
            try:
                x, z = int(a, 0), int(b, 0)
            except ValueError:
                return 0
            res = {"<": x < z, "<=": x <= z, ">": x > z, ">=": x >= z}[op]
            return 2 if res else 0
        return _tri(value_of(tok))

    def and_expr() -> int:
        nonlocal pos
        v = primary()
        while pos < len(toks) and toks[pos] == "&&":
            pos += 1
            v = min(v, primary())
        return v

    def or_expr() -> int:
        nonlocal pos
        v = and_expr()
        while pos < len(toks) and toks[pos] == "||":
            pos += 1
            v = max(v, and_expr())
        return v

    return or_expr()


def expr_symbols(expr: str) -> list[str]:
    out = []
    for t in _tokens(expr):
        if re.fullmatch(r"[A-Z0-9_]+", t) and not t.isdigit() and t not in out:
            out.append(t)
    return out


# ---------------------------------------------------------------- verify --


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
    sel = [(s, c) for s, c in index.selectors(symbol) if _tri(config.get(s)) > 0
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


