"""The unpatched base kernel the hot path is compared against: an earlier run's build.

Found among the run directories under ``--out`` (and this bench's own) by their run
records (:func:`harness.record.load`): same base commit, no patches, same profile, a
passed build; one made from the same config fragments is preferred.
"""

from __future__ import annotations

from pathlib import Path

from harness import record
from harness.stages.kconfig import parse_config


def fragments_match(run_dir: Path, expected: list[Path]) -> bool:
    """Did the run at ``run_dir`` use exactly the fragments ``expected`` (names and content)?"""
    d = run_dir / "fragments"
    if not d.is_dir():
        return False

    def index(p: Path) -> int:
        head = p.name.split("-", 1)[0]
        return int(head) if head.isdigit() else 10**6

    got = sorted(d.iterdir(), key=index)
    if len(got) != len(expected):
        return False
    for g, e in zip(got, expected):
        try:
            if g.name.split("-", 1)[-1] != e.name or g.read_bytes() != e.read_bytes():
                return False
        except OSError:
            return False
    return True


def _unpatched_build(d: Path, base_commit: str, profile: str) -> Path | None:
    """``d``'s bzImage when ``d`` is a passed unpatched build of ``base_commit``."""
    rec = record.load(d)
    src = rec.group("source")
    if (src.get("base_commit") != base_commit or src.get("patches")
            or src.get("head_commit") != base_commit):
        return None
    if rec.group("build").get("options", {}).get("profile") != profile:
        return None
    build = rec.stages.get("build")
    if build is None or build.status != "PASS":
        return None
    bz = d / "kernel" / "bzImage"
    return bz if bz.is_file() else None


def find_base_kernel(roots: list[Path], base_commit: str, profile: str,
                     fragments: list[Path] | None = None) -> tuple[Path, bool] | None:
    """The newest unpatched build of ``base_commit`` (same profile) in run dirs under ``roots``.

    Prefers one built from the same ``fragments`` (content); returns (bzImage, same
    fragments?) or None.
    """
    best: tuple[bool, float, Path] | None = None
    seen: set[Path] = set()
    for root in roots:
        if not root.is_dir():
            continue
        for pattern in ("*/metadata.json", "*/*/*/metadata.json", "*/runs/*/*/metadata.json"):
            for mf in root.glob(pattern):
                d = mf.parent.resolve()
                if d in seen:
                    continue
                seen.add(d)
                bz = _unpatched_build(d, base_commit, profile)
                if bz is None:
                    continue
                cand = (fragments is not None and fragments_match(d, fragments),
                        bz.stat().st_mtime, bz)
                if best is None or cand[:2] > best[:2]:
                    best = cand
    return (best[2], best[0]) if best else None


def config_difference(a: Path, b: Path) -> list[str]:
    """Options whose value differs between two ``.config`` files (series options excluded)."""
    try:
        ca = parse_config(a.read_text(encoding="utf-8"))
        cb = parse_config(b.read_text(encoding="utf-8"))
    except OSError:
        return ["(config not available)"]
    diff = []
    for k in sorted(set(ca) | set(cb)):
        if "RECHARGE" in k:
            continue
        if ca.get(k, "n") != cb.get(k, "n"):
            diff.append(f"{k}: {ca.get(k, 'n')} -> {cb.get(k, 'n')}")
    return diff


