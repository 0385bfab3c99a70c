"""One line of (K)TAP: the patterns, the ``# `` / indentation levels in front of it
(:func:`peel`) and a result line's name, status and reason (:func:`parse_result`)."""

from __future__ import annotations

import re

from harness.parse.ktap.model import CaseStatus

PRINTK = re.compile(r"^\s*(?:<\d+>)?\[\s*\d+\.\d+\]")
VERSION = re.compile(r"^(K?TAP version \d+)\s*$")
PLAN = re.compile(r"^1\.\.(\d+)\s*(?:#\s*(.*))?$")
RESULT = re.compile(r"^(not ok|ok)\s+(\d+)(?:\s+(.*))?$")
BAIL = re.compile(r"^Bail out!\s*(.*)$")
SUBTEST = re.compile(r"^Subtest:\s*(.*)$")
TOTALS = re.compile(r"^Totals:\s*(.*)$")
TOTAL_ITEM = re.compile(r"(\w+):(\d+)")
_DIRECTIVE_SPLIT = re.compile(r"(?:^|\s)#")
DIRECTIVE = re.compile(r"^(SKIP\w*|TODO|XFAIL|XPASS|TIMEOUT|ERROR)\b[:\s]*(.*)$", re.IGNORECASE)


def peel(line: str) -> tuple[list[int], str]:
    """Split a line into indentation widths per '# ' level, and the content.

    ``"  ok 1 a"`` -> ([2], "ok 1 a"); ``"# ok 1 a"`` -> ([0, 0], "ok 1 a");
    ``"#   ok 1 a"`` -> ([0, 2], "ok 1 a").  The number of '# ' prefixes is
    ``len(widths) - 1``.
    """
    widths: list[int] = []
    rest = line.expandtabs(8)
    while True:
        stripped = rest.lstrip(" ")
        widths.append(len(rest) - len(stripped))
        rest = stripped
        if rest == "#":
            widths.append(0)
            return widths, ""
        if rest.startswith("# "):
            rest = rest[2:]
            continue
        return widths, rest.rstrip()


def parse_result(ok: bool, number: int, rest: str) -> tuple[str, CaseStatus, str]:
    """Name, status and reason from the part of a result line after the number."""
    rest = rest.strip()
    m = _DIRECTIVE_SPLIT.search(rest)
    if m:
        desc, comment = rest[: m.start()].strip(), rest[m.end() :].strip()
    else:
        desc, comment = rest, ""
    if desc.startswith("- "):
        desc = desc[2:].strip()
    elif desc == "-":
        desc = ""
    directive = ""
    reason = comment
    dm = DIRECTIVE.match(comment)
    if dm:
        directive = dm.group(1).upper()
        reason = dm.group(2).strip()
    name = desc or reason or f"case_{number}"

    if directive.startswith("SKIP"):
        status = CaseStatus.SKIP
    elif directive == "XFAIL":
        status = CaseStatus.XFAIL
    elif directive == "XPASS":
        status = CaseStatus.XPASS
    elif directive == "TIMEOUT":
        status = CaseStatus.TIMEOUT
    elif directive == "ERROR":
        status = CaseStatus.ERROR
    elif directive == "TODO":
        status = CaseStatus.PASS if ok else CaseStatus.XFAIL
        reason = f"TODO {reason}".strip()
    else:
        status = CaseStatus.PASS if ok else CaseStatus.FAIL
    return name, status, reason


def top_level_result(line: str) -> tuple[int, str, CaseStatus] | None:
    """``(number, name, status)`` if ``line`` is a top-level result line (not indented,
    not behind ``#``): what a live progress display follows, one line at a time."""
    widths, content = peel(line.rstrip("\n"))
    if widths != [0]:
        return None
    m = RESULT.match(content)
    if not m:
        return None
    name, status, _ = parse_result(m.group(1) == "ok", int(m.group(2)), m.group(3) or "")
    return int(m.group(2)), name, status


def top_level_plan(line: str) -> int | None:
    """N of a top-level ``1..N`` plan line."""
    widths, content = peel(line.rstrip("\n"))
    m = PLAN.match(content) if widths == [0] else None
    return int(m.group(1)) if m else None
