"""Markers: ``RECHARGE-HARNESS: begin <suite> <case>`` / ``... end <suite> <case>`` lines
the harness writes into the guest log bracket each case's kernel-log lines."""

from __future__ import annotations

import re

MARKER = "RECHARGE-HARNESS:"
KERNEL_SUITE = "kernel-log"
BOOT: tuple[str, str] = (KERNEL_SUITE, "(boot)")
BETWEEN: tuple[str, str] = (KERNEL_SUITE, "(between)")


_MARKER_LINE = re.compile(rf"{re.escape(MARKER)} (?P<op>begin|end) (?P<suite>\S+)(?: (?P<case>.*))?$")


def regions(lines: list[str]) -> list[tuple[tuple[str, str], list[int]]]:
    """Consecutive runs of line indexes with the key they belong to."""
    stack: list[tuple[str, str]] = []
    seen_marker = False
    out: list[tuple[tuple[str, str], list[int]]] = []
    for idx, raw in enumerate(lines):
        m = _MARKER_LINE.search(raw)
        if m:
            seen_marker = True
            key = (m.group("suite"), (m.group("case") or "").strip())
            if m.group("op") == "begin":
                stack.append(key)
            elif key in stack:
                while stack and stack.pop() != key:
                    pass
            continue
        if stack:
            key = stack[-1]
        else:
            key = BETWEEN if seen_marker else BOOT
        if out and out[-1][0] == key:
            out[-1][1].append(idx)
        else:
            out.append((key, [idx]))
    return out


def split_by_markers(text: str) -> dict[tuple[str, str], str]:
    """Kernel log text per ``(suite, case)`` bracket; marker lines themselves dropped.

    Lines before the first marker go to :data:`BOOT`, lines outside any bracket
    after it to :data:`BETWEEN`.  A ``begin`` without its ``end`` (the kernel
    died) extends to the end of the log.  Text of repeated keys is concatenated.
    """
    lines = text.splitlines()
    out: dict[tuple[str, str], list[str]] = {}
    for key, idxs in regions(lines):
        out.setdefault(key, []).extend(lines[i] for i in idxs)
    return {k: "\n".join(v) + "\n" for k, v in out.items()}
