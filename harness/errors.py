"""Exceptions that mean "no verdict possible".

A failed test is a *result*, never an exception.  Everything here ends a run
with exit code 2 and one line naming the cause (``E: <message>``).

``UserError``   the input is wrong (bad option, tree, series, patch, fragment).
``InfraError``  the machine or a tool failed (QEMU, SSH, disk, timeout).
"""

from __future__ import annotations

from pathlib import Path

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_NO_VERDICT = 2


class HarnessError(Exception):
    """Base class.  ``str(e)`` is a single line; ``log`` points at details."""

    exit_code = EXIT_NO_VERDICT
    kind = "error"

    def __init__(self, message: str, *, log: Path | None = None, hint: str | None = None):
        # Keep the message on one line: multi-line causes go to the log.
        first, _, _ = message.strip().partition("\n")
        super().__init__(first)
        self.message = first
        self.log = log
        self.hint = hint

    def describe(self) -> str:
        """The line the CLI prints."""
        text = self.message
        if self.log is not None:
            text += f" (log: {self.log})"
        return text


class UserError(HarnessError):
    """Bad input: options, tree, base ref, series file, patch, fragment."""

    kind = "user"


class InfraError(HarnessError):
    """The environment failed: tools missing, QEMU, guest, SSH, disk, timeouts."""

    kind = "infrastructure"


class Interrupted(InfraError):
    """SIGINT or SIGTERM received; everything started has been cleaned up."""

    kind = "interrupted"

    def __init__(self, signame: str):
        super().__init__(f"interrupted by {signame}")
        self.signame = signame


def is_interrupt(e: BaseException) -> bool:
    """``e`` is a signal the user or the system sent to stop the run (SIGINT, SIGTERM)."""
    return isinstance(e, (KeyboardInterrupt, Interrupted))


def is_termination(e: BaseException) -> bool:
    """``e`` is SIGTERM or SIGHUP: whoever sent it may send SIGKILL soon, so the guests are
    stopped first and asked nothing more (after Ctrl-C the harness still asks for dmesg)."""
    return isinstance(e, Interrupted) and e.signame != "SIGINT"


def stop_reason(e: BaseException) -> str:
    """One line: what ``e`` is, as a reason the run stopped (``interrupted by SIGINT``)."""
    if isinstance(e, KeyboardInterrupt):
        return "interrupted by SIGINT"
    if isinstance(e, HarnessError):
        return e.describe()
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


class CommandTimeout(InfraError):
    """A command ran past its deadline and its whole process group was killed."""


# Stage-specific errors: callers (bisect, compare) can tell them apart.


class SourceError(UserError):
    """Tree missing / not git / base ref unknown / tarball unavailable."""


class SeriesError(UserError):
    """patches/series malformed, a patch file missing, or a patch that does not apply."""

    def __init__(
        self,
        message: str,
        *,
        patch: str | None = None,
        files: tuple[str, ...] = (),
        log: Path | None = None,
    ):
        super().__init__(message, log=log)
        self.patch = patch
        self.files = files


class ConfigError(UserError):
    """A requested CONFIG_ option is not in the final .config (or unknown to the tree)."""


class BuildError(UserError):
    """The kernel or the selftests did not compile (first compiler error in the message)."""

    def __init__(self, message: str, *, log: Path | None = None, first_error: str = ""):
        super().__init__(message, log=log)
        self.first_error = first_error


class BootError(InfraError):
    """The guest did not come up (panic, hang, QEMU failure)."""


class SshError(InfraError):
    """The guest's sshd never answered, or the connection broke."""
