"""``.config`` and fragment files, and the options fragments request."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from harness.errors import ConfigError

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
