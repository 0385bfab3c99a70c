"""``depends on`` expressions: tristate evaluation against a config, and their symbols."""

from __future__ import annotations

import re

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


def tri(value: str | None) -> int:
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
        return tri(value_of(tok))

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
