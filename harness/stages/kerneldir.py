"""``test --kernel-dir DIR``: the kernel, ``.config`` and selftests another run built.

DIR is a run directory of ``build`` (or ``run``), e.g. a CI job's artifact: its
``kernel/bzImage``, ``config`` and ``guest/<origin>/`` are copied into the new run
directory, which then boots and tests them like its own (harness.modes.run: recorded
as the ``build`` stage; source, apply and config do not apply and are not recorded).
No source tree, no build, no cache is needed.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import InfraError, UserError
from harness.stages import inventory, widenet

#: The guest directories a run directory may hold (harness.stages.build.copy_outputs).
ORIGINS = ("cgroup", "own", widenet.MM_ORIGIN)
#: The building run's source facts that say which commits the kernel was built from.
COMMIT_KEYS = ("base_commit", "head_commit")


def kernel_dir_files(d: Path) -> tuple[Path, Path | None]:
    """``--kernel-dir``: the bzImage and the ``.config`` of a run directory (a ``build``'s
    or a ``run``'s; its kernel/ and guest/ are what the guest boots and runs)."""
    if not d.is_dir():
        raise UserError(f"--kernel-dir {d}: no such directory")
    bz = next((p for p in (d / "kernel" / "bzImage", d / "bzImage") if p.is_file()), None)
    if bz is None:
        raise UserError(f"--kernel-dir {d}: no kernel/bzImage (a run directory of "
                        "`recharge-harness build` has one)")
    cfg = next((p for p in (d / "config", d / ".config") if p.is_file()), None)
    return bz, cfg


@dataclass
class KernelDir:
    """What a run takes over from ``--kernel-dir`` (copied into its own directory)."""

    bzimage: Path
    feature: bool | None
    guest_dirs: dict[str, Path | None] = field(default_factory=dict)
    #: the building run's ``source`` record, plus ``kernel_dir``
    source: dict[str, Any] = field(default_factory=dict)
    detail: str = ""

    @property
    def commits(self) -> dict[str, str]:
        """The commits the kernel was built from (for junit.xml's properties)."""
        return {k: str(v) for k, v in self.source.items() if k in COMMIT_KEYS}


def _built_source(d: Path) -> dict[str, Any]:
    """The ``source`` facts of the run that built the kernel (its metadata.json)."""
    try:
        src = json.loads((d / "metadata.json").read_text()).get("source", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return dict(src) if isinstance(src, dict) else {}


def use_kernel_dir(d: Path, run_dir: Path) -> KernelDir:
    """Copy ``d``'s kernel, config and selftests into ``run_dir`` (see the module's doc)."""
    if shutil.which("qemu-system-x86_64") is None:
        raise InfraError("qemu-system-x86_64 not found (apt-get install "
                         "qemu-system-x86): needed to boot")
    bz, cfg = kernel_dir_files(d)
    kdir = run_dir / "kernel"
    kdir.mkdir(exist_ok=True)
    bzimage = kdir / "bzImage"
    shutil.copy(bz, bzimage)
    feature = None
    if cfg is not None:
        shutil.copy(cfg, run_dir / "config")
        feature = inventory.config_claims(run_dir / "config")
    guest_dirs: dict[str, Path | None] = {}
    for origin in ORIGINS:
        src = d / "guest" / origin
        if src.is_dir():
            dst = run_dir / "guest" / origin
            shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
            guest_dirs[origin] = dst
        else:
            guest_dirs[origin] = None
    have = [o for o, p in guest_dirs.items() if p is not None]
    detail = (f"using the kernel of {d} (selftests: {', '.join(have) or 'none'}"
              + ("" if cfg else "; no config: the feature is not judged") + ")")
    return KernelDir(bzimage, feature, guest_dirs, {**_built_source(d), "kernel_dir": str(d)},
                     detail)
