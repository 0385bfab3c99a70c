"""An index of the tree's Kconfig files: every ``config`` entry reachable from
``<tree>/Kconfig`` for one architecture, with its ``depends on`` (own and inherited from
``if``/``menu``/``choice``), ``select`` and whether it has a prompt."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

ARCH = "x86"


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
_BLOCK_WORDS = ("if", "menu", "choice", "endif", "endmenu", "endchoice")
_SOURCE_WORDS = ("source", "rsource", "osource", "orsource")


def _join_continuations(raw_lines: list[str]) -> list[tuple[int, str]]:
    """Backslash continuations joined, with the line number of each first line."""
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
    return lines


@dataclass
class _FileState:
    """Where the parse of one Kconfig file is."""

    path: Path
    rel: str
    outer: list[str]  # conditions of the blocks around the ``source`` line
    # Block stack: ("if"|"menu"|"choice", [conditions]); a menu's/choice's own
    # "depends on" lines are appended to its condition list as we see them.
    stack: list[tuple[str, list[str]]] = field(default_factory=list)
    current: SymbolDef | None = None
    block_for_deps: list[str] | None = None  # menu/choice whose deps we are reading
    help_indent: int | None = None

    def conds(self) -> list[str]:
        return self.outer + [c for _, cs in self.stack for c in cs]

    def block(self, word: str, rest: str) -> None:
        """Open or close an ``if``/``menu``/``choice`` block."""
        if word == "if":
            self.stack.append(("if", [rest]))
        elif word in ("menu", "choice"):
            self.stack.append((word, []))
            self.block_for_deps = self.stack[-1][1]
        else:
            want = {"endif": "if", "endmenu": "menu", "endchoice": "choice"}[word]
            while self.stack:
                kind, _ = self.stack.pop()
                if kind == want:
                    break

    def depends_on(self, expr: str) -> None:
        if self.current is not None:
            self.current.depends.append(expr)
        elif self.block_for_deps is not None:
            self.block_for_deps.append(expr)


def _attribute(current: SymbolDef, word: str, rest: str) -> None:
    """A line of a ``config`` entry that is neither a keyword nor ``depends on``."""
    if word in _PROMPT_TYPES or word.startswith("def_"):
        if word == "prompt" or (word in _PROMPT_TYPES and rest.startswith('"')):
            current.has_prompt = True
    elif word == "select":  # "imply" does not force anything on
        target_sym, _, cond = rest.partition(" if ")
        current.selects.append((target_sym.strip(), cond.strip() or None))


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
        st = _FileState(path, rel, outer)
        for lineno, line in _join_continuations(raw_lines):
            self._parse_line(st, lineno, line)

    def _parse_line(self, st: _FileState, lineno: int, line: str) -> None:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if st.help_indent is not None:
            if not stripped or indent > st.help_indent:
                return
            st.help_indent = None
        if not stripped or stripped.startswith("#"):
            return
        word, _, rest = stripped.partition(" ")
        rest = rest.strip()
        if word in _KEYWORDS:
            st.current = None
            st.block_for_deps = None
        if word in ("config", "menuconfig"):
            st.current = SymbolDef(rest, st.rel, lineno, depends=list(st.conds()),
                                   in_choice=any(k == "choice" for k, _ in st.stack))
            self.symbols.setdefault(rest, []).append(st.current)
        elif word in _BLOCK_WORDS:
            st.block(word, rest)
        elif word in _SOURCE_WORDS:
            self._source(st, word, rest)
        elif word in ("help", "---help---"):
            st.help_indent = indent
        elif stripped.startswith("depends on"):
            st.depends_on(" ".join(stripped[len("depends on"):].split()))
        elif st.current is not None:
            _attribute(st.current, word, rest)

    def _source(self, st: _FileState, word: str, rest: str) -> None:
        """``source "path"`` and its variants: parse that file (or glob) here."""
        m = re.match(r'"([^"]+)"', rest)
        if not m:
            return
        target = self._expand(m.group(1))
        if target is None:
            return
        base = st.path.parent if word in ("rsource", "orsource") else self.tree
        optional = word.startswith("o")
        if "*" in target:
            for p in sorted(base.glob(target)):
                self._parse_file(p, st.conds(), optional=True)
        else:
            self._parse_file(base / target, st.conds(), optional=optional)


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


