"""The per-patch table as pure logic over :class:`Steps` (what patchcheck needs from the
harness; :class:`~harness.modes.patchcheck.kernel.KernelSteps` is the real one)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Sequence

from harness.errors import EXIT_FAIL, EXIT_NO_VERDICT, EXIT_PASS, HarnessError
from harness.model import Status
from harness.parse import buildlog
from harness.parse.buildlog import CompilerWarning
from harness.parse.checkpatch import LEVELS, AllowRule, Finding, apply_allow, parse_checkpatch

if TYPE_CHECKING:
    from harness.stages.apply import Patch

_PATCH_TAG = re.compile(r"^\[[^\]]*\]\s*")


@dataclass(frozen=True)
class Built:
    log_text: str
    detail: str
    duration_s: float


class Steps(Protocol):
    """What patchcheck needs from the harness; :class:`KernelSteps` is the real one."""

    def apply_all(self, patches: Sequence["Patch"]) -> list[str]:
        """Apply the whole series once; commit per patch.  SeriesError names a bad patch."""

    def checkout(self, k: int) -> None:
        """Put the tree at base + the first ``k`` patches (0 = the base)."""

    def configure(self, k: int, final: bool) -> None:
        """Produce and verify the .config; ``final``: unknown options are errors."""

    def build(self, k: int, forget: list[str]) -> Built:
        """Incremental kernel build after deleting the objects of ``forget``."""

    def checkpatch(self, k: int, patch: Path) -> str:
        """Output of ``checkpatch.pl --strict --show-types`` on the patch file."""


@dataclass
class Row:
    index: int  # 0 = the base
    name: str
    subject: str
    touched: tuple[str, ...] = ()
    apply: Status = Status.NOTRUN
    build: Status = Status.NOTRUN
    checkpatch: Status = Status.NOTRUN
    detail: list[str] = field(default_factory=list)
    build_s: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    new_warnings: list[CompilerWarning] = field(default_factory=list)

    @property
    def verdict(self) -> Status:
        parts = (self.apply, self.build) + ((self.checkpatch,) if self.index else ())
        if any(s in (Status.ERROR, Status.NOTRUN) for s in parts):
            return Status.ERROR
        if self.checkpatch is Status.FAIL or self.new_warnings:
            return Status.FAIL
        return Status.PASS


@dataclass
class Result:
    rows: list[Row]
    unused_rules: list[str] = field(default_factory=list)
    boot: tuple[Status, str] | None = None  # (status, detail) of --boot

    @property
    def exit_code(self) -> int:
        statuses = [r.verdict for r in self.rows] + ([self.boot[0]] if self.boot else [])
        if any(s in (Status.ERROR, Status.NOTRUN) for s in statuses):
            return EXIT_NO_VERDICT
        if any(s is Status.FAIL for s in statuses):
            return EXIT_FAIL
        return EXIT_PASS


def check_series(patches: Sequence["Patch"], steps: Steps, rules: Sequence[AllowRule], *,
                 fail_on: str = "CHECK", base_label: str = "the base") -> Result:
    """The per-patch table (pure logic over :class:`Steps`)."""
    counted = LEVELS[: LEVELS.index(fail_on) + 1]
    touched = [buildlog.touched_files(p.path.read_text(encoding="utf-8", errors="replace"))
               for p in patches]
    base = Row(0, "(base)", base_label, apply=Status.PASS)
    rows = [base] + [Row(p.index, p.name, _PATCH_TAG.sub("", p.subject), touched[i])
                     for i, p in enumerate(patches)]
    applicable = _apply(patches, steps, rows)
    tree_ok = _build_prefixes(steps, rows, touched, applicable)
    used = _checkpatch(patches, steps, rows, rules, counted) if tree_ok else set()
    return Result(rows, [r.where for r in rules if r.where not in used])


def _apply(patches: Sequence["Patch"], steps: Steps, rows: list[Row]) -> int:
    """Apply the series once; how many patches applied (the rows after are not run)."""
    applicable = len(patches)
    try:
        steps.apply_all(patches)
    except HarnessError as e:
        bad = getattr(e, "patch", None)
        applicable = next((i for i, p in enumerate(patches) if p.name == bad), 0)
        rows[applicable + 1].apply = Status.ERROR
        rows[applicable + 1].detail.append(f"apply: {e.describe()}")
    for r in rows[applicable + 2:]:
        r.detail.append("apply: not run (an earlier patch does not apply)")
    return applicable


def _build_prefixes(steps: Steps, rows: list[Row], touched: list[tuple[str, ...]],
                    applicable: int) -> bool:
    """Check out, configure and build every prefix that applied, noting each patch's new
    warnings; False when a checkout failed (the tree is then in no known state)."""
    n = len(touched)
    base = rows[0]
    seen: list[CompilerWarning] = []
    for k, row in enumerate(rows):
        if k > applicable:
            break
        files = list(touched[k - 1]) if k else []
        if k < n:
            files += touched[k]  # the next patch's files: their warnings before it
        try:
            steps.checkout(k)
            row.apply = Status.PASS
        except HarnessError as e:
            row.apply = Status.ERROR
            row.detail.append(f"checkout: {e.describe()}")
            return False
        if base.build is Status.ERROR:
            row.detail.append("build: not run (the base does not build)")
            continue
        try:
            steps.configure(k, final=k == n)
            built = steps.build(k, list(dict.fromkeys(buildlog.kernel_c_files(files))))
        except HarnessError as e:
            row.build = Status.ERROR
            row.detail.append(f"build: {e.describe()}")
            continue
        row.build, row.build_s = Status.PASS, built.duration_s
        warnings = buildlog.parse_warnings(built.log_text)
        if k:
            row.new_warnings = buildlog.new_warnings(seen, warnings, touched[k - 1])
        seen += warnings
    return True


#: What git's commit-message editor puts in its template (as comments, or folded into
#: the text by a careless reword): checkpatch does not look for it.
_TEMPLATE = re.compile(r"interactive rebase in progress|Please enter the commit message|"
                       r"with '#' will be ignored|Changes to be committed:|"
                       r"You are currently (?:editing|rebasing)")


def message_findings(patch: Path) -> list[Finding]:
    """The commit message (up to the first ``---`` line) holds git's editor template."""
    try:
        text = patch.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    message = text.split("\n---\n", 1)[0]
    hits = [line for line in message.splitlines() if _TEMPLATE.search(line)]
    if not hits:
        return []
    return [Finding("ERROR", "COMMIT_MESSAGE_TEMPLATE",
                    "the commit message contains git's editor template", "",
                    "ERROR:COMMIT_MESSAGE_TEMPLATE: the commit message contains git's editor "
                    "template\n" + "\n".join(hits[:3]))]


def _checkpatch(patches: Sequence["Patch"], steps: Steps, rows: list[Row],
                rules: Sequence[AllowRule], counted: Sequence[str]) -> set[str]:
    """checkpatch on every patch, findings filtered by the allow-list; the rules used."""
    used: set[str] = set()
    for k, row in enumerate(rows[1:], 1):
        try:
            out = steps.checkpatch(k, patches[k - 1].path)
        except HarnessError as e:
            row.checkpatch = Status.ERROR
            row.detail.append(f"checkpatch: {e.describe()}")
            continue
        found, totals = parse_checkpatch(out)
        if totals is None:
            row.checkpatch = Status.ERROR
            row.detail.append("checkpatch: no 'total:' line in its output (see the log)")
            continue
        template = message_findings(patches[k - 1].path)
        row.findings, u = apply_allow(found + template, row.name, rules)
        used |= u
        bad = [f for f in row.findings if f.allowed is None and f.level in counted]
        row.checkpatch = Status.FAIL if bad else Status.PASS
        if sum(totals.values()) != len(found):  # the template finding is ours
            row.detail.append(f"checkpatch: totals {totals} but {len(found)} findings parsed")
    return used
