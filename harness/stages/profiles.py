"""Config profiles: virtme-configkernel's starting point + the profile's fragments.

The fragments of a profile are merged after the tree's cgroup selftest config and
``recharge.config`` + ``testenv.config`` (see :mod:`harness.modes.run`).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import UserError

#: Every profile: what the series, the in-guest test environment and the kernel's mm
#: selftests (suite ``mm``) need.  One ``.config`` for every suite: a run with
#: ``--suite mm`` reuses the default build, and the default suites also run on a kernel
#: with KSM, userfaultfd, hugetlbfs and soft-dirty.
BASE_FRAGMENTS = ("recharge.config", "testenv.config", "mmtests.config")

@dataclass(frozen=True)
class Profile:
    """A config profile (see the module docstring)."""

    name: str
    base: str  # "--allnoconfig" or "--defconfig"
    fragments: tuple[str, ...]
    description: str


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("tiny", "--allnoconfig", ("tiny.config",),
            "tailored: allnoconfig + what virtme-ng and the suites need (the default)"),
    Profile("slim", "--defconfig", ("slim.config",),
            "virtme-ng's default config minus DRM, sound, KVM host, USB, ..."),
    Profile("vng", "--defconfig", (),
            "virtme-ng's default config + the test fragments (the benchmark's anchor)"),
    Profile("debug", "--allnoconfig", ("tiny.config", "debug.config"),
            "tiny + KASAN, KFENCE, lockdep, DEBUG_VM, hung-task/lockup detectors"),
)}
DEFAULT_PROFILE = "tiny"
#: Older names still accepted on the command line.
PROFILE_ALIASES = {"default": DEFAULT_PROFILE}


def get_profile(name: str) -> Profile:
    prof = PROFILES.get(PROFILE_ALIASES.get(name, name))
    if prof is None:
        raise UserError(f"--profile {name!r}: expected one of {', '.join(PROFILES)}")
    return prof
