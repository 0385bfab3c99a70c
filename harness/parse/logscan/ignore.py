"""The ignore list (``logscan.ignore`` in the project): findings known and accepted."""

from __future__ import annotations

import re
from pathlib import Path


def parse_ignore(text: str) -> list[re.Pattern[str]]:
    """One regex per line; blank lines and lines starting with ``#`` are skipped.

    Raises ``ValueError`` naming the line of an invalid regex.
    """
    out: list[re.Pattern[str]] = []
    for no, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            out.append(re.compile(line))
        except re.error as exc:
            raise ValueError(f"line {no}: invalid regex {line!r}: {exc}") from exc
    return out


def load_ignore(path: Path) -> list[re.Pattern[str]]:
    """Read an ignore-list file (see :func:`parse_ignore`)."""
    return parse_ignore(Path(path).read_text(encoding="utf-8", errors="replace"))
