"""``scripts/checkpatch.pl`` output and the allow-list of known false positives.

:func:`parse_checkpatch` reads the output of ``checkpatch.pl --strict --show-types
--color=never``: one :class:`Finding` per report block (``LEVEL:TYPE: message``,
then ``#N: FILE: path:line:`` and the quoted lines, up to a blank line) and the
``total:`` counts (None when checkpatch did not get that far).

The allow-list (the project's ``checkpatch-allow.txt``) has one finding per line:
``<patch file or glob> <regex>  # reason``.  The reason is required; it starts at
the first ``#`` preceded by whitespace.  The regex is searched (``^``/``$`` at line
boundaries) in the whole block, so a rule can name the code it excuses.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from harness.errors import UserError

__all__ = ["LEVELS", "AllowRule", "Finding", "apply_allow", "load_allow", "parse_allow",
           "parse_checkpatch"]

LEVELS = ("ERROR", "WARNING", "CHECK")


_ITEM = re.compile(r"^(?P<level>ERROR|WARNING|CHECK):(?:(?P<type>[A-Z0-9_]+):)? (?P<msg>.*)$")
_WHERE = re.compile(r"^#\d+: FILE: (?P<file>[^:]+):(?P<line>\d+):")
_TOTAL = re.compile(r"^total: (?P<e>\d+) errors, (?P<w>\d+) warnings, (?:(?P<c>\d+) checks, )?")


@dataclass(frozen=True)
class Finding:
    """One checkpatch report."""

    level: str  # ERROR | WARNING | CHECK
    type: str  # e.g. OPEN_BRACE ("" without --show-types)
    message: str
    where: str  # "mm/vmscan.c:5717" or ""
    text: str  # the whole block: header, location, quoted lines
    allowed: str | None = None  # the allow-list reason, when allowed

    @property
    def head(self) -> str:
        return f"{self.level}:{self.type + ':' if self.type else ''} {self.message}"


def parse_checkpatch(output: str) -> tuple[list[Finding], dict[str, int] | None]:
    """Findings of a ``checkpatch.pl --show-types`` run and its ``total:`` counts."""
    found: list[Finding] = []
    block: list[str] = []
    totals: dict[str, int] | None = None

    def close() -> None:
        if not block:
            return
        m = _ITEM.match(block[0])
        assert m is not None
        where = ""
        for line in block[1:]:
            w = _WHERE.match(line)
            if w:
                where = f"{w.group('file')}:{w.group('line')}"
                break
        found.append(Finding(m.group("level"), m.group("type") or "", m.group("msg").strip(),
                             where, "\n".join(block)))
        block.clear()

    for line in output.splitlines():
        t = _TOTAL.match(line)
        if t:
            close()
            totals = {"ERROR": int(t.group("e")), "WARNING": int(t.group("w")),
                      "CHECK": int(t.group("c") or 0)}
            continue
        if _ITEM.match(line):
            close()
            block.append(line.rstrip())
        elif block:
            if not line.strip():
                close()
            else:
                block.append(line.rstrip())
    close()
    return found, totals


@dataclass(frozen=True)
class AllowRule:
    patch: str  # file name or glob, as in the series file
    regex: re.Pattern[str]
    reason: str
    where: str  # "file:line" of the rule, for messages


_REASON = re.compile(r"\s+#(?:\s|$)")


def parse_allow(text: str, origin: str = "allow-list") -> list[AllowRule]:
    """``<patch> <regex>  # reason`` lines; ``#`` comments and blank lines skipped."""
    rules: list[AllowRule] = []
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{origin}:{no}"
        parts = line.split(None, 1)
        if len(parts) < 2:
            raise UserError(f"{where}: expected '<patch> <regex>  # reason'")
        m = _REASON.search(parts[1])
        if m is None or not parts[1][m.end():].strip():
            raise UserError(f"{where}: every allowed finding needs a reason ('  # why')")
        pattern, reason = parts[1][: m.start()].strip(), parts[1][m.end():].strip()
        try:
            rx = re.compile(pattern, re.M)
        except re.error as e:
            raise UserError(f"{where}: invalid regex {pattern!r}: {e}") from e
        rules.append(AllowRule(parts[0], rx, reason, where))
    return rules


def load_allow(path: Path | None) -> list[AllowRule]:
    if path is None or not path.is_file():
        return []
    return parse_allow(path.read_text(encoding="utf-8"), str(path))


def apply_allow(findings: list[Finding], patch_name: str,
                rules: Sequence[AllowRule]) -> tuple[list[Finding], set[str]]:
    """Mark findings an allow rule matches; also returns the rules (``where``) used."""
    used: set[str] = set()
    out: list[Finding] = []
    for f in findings:
        rule = next((r for r in rules if fnmatch.fnmatchcase(patch_name, r.patch)
                     and r.regex.search(f.text)), None)
        if rule is not None:
            used.add(rule.where)
            f = replace(f, allowed=rule.reason)
        out.append(f)
    return out, used
