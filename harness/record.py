"""The run record: ``metadata.json`` as a typed value, with its schema version.

:class:`harness.report.metadata.Metadata` writes it (atomically, during the run);
every reader (child runs of compare/bisect/patchcheck/mutants/bench, ``merge``) goes
through :func:`load`, which never raises: a missing or unreadable file is an empty
record (``exit_code`` None), so a run that died early reads as "no verdict".

The file keeps its two-level shape (group -> key -> value); the version is
``build.schema_version`` (absent in files written before it existed: version 0,
same keys).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Version of the metadata.json layout.  Bump it when a key changes meaning or moves.
SCHEMA_VERSION = 1

#: Kernel-log finding kinds that are informational (mirrors harness.parse.logscan).
INFO_KINDS = frozenset({"oom"})


@dataclass(frozen=True)
class StageRecord:
    name: str
    status: str  # PASS | FAIL | ERROR | NOTRUN
    duration_s: float
    detail: str = ""
    log: str | None = None


@dataclass(frozen=True)
class FindingRecord:
    suite: str
    case: str
    kind: str
    signature: str

    @property
    def failing(self) -> bool:
        return self.kind not in INFO_KINDS


@dataclass(frozen=True)
class RunRecord:
    """What a run directory's ``metadata.json`` says, typed where readers use it."""

    schema_version: int = SCHEMA_VERSION
    exit_code: int | None = None
    status: str = "missing"  # running | pass | fail | no verdict | missing
    stages: dict[str, StageRecord] = field(default_factory=dict)
    suites: dict[str, dict[str, Any]] = field(default_factory=dict)
    findings: tuple[FindingRecord, ...] = ()
    #: Every group as written (``source``, ``config``, ``build_info``, ``vm``, ...).
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)

    def group(self, name: str) -> dict[str, Any]:
        g = self.groups.get(name)
        return g if isinstance(g, dict) else {}

    def failed_stage(self) -> tuple[str, str] | None:
        """(stage, detail) of the first stage that ended in ERROR, in run order."""
        for st in self.stages.values():
            if st.status == "ERROR":
                return st.name, st.detail
        return None

    def failing_findings(self) -> list[FindingRecord]:
        return [f for f in self.findings if f.failing]

    def as_dict(self) -> dict[str, Any]:
        return self.groups


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


def from_dict(data: dict[str, Any]) -> RunRecord:
    """A record from the parsed JSON (tolerant: wrong types read as absent)."""
    groups = {k: v for k, v in data.items() if isinstance(v, dict)}
    results = groups.get("results", {})
    stages: dict[str, StageRecord] = {}
    raw_stages = results.get("stages", {})
    for name, st in (raw_stages.items() if isinstance(raw_stages, dict) else ()):
        if isinstance(st, dict):
            stages[name] = StageRecord(name, str(st.get("status") or ""), _float(st.get("duration_s")),
                                       str(st.get("detail") or ""), st.get("log"))
    suites = results.get("suites", {})
    raw_findings = groups.get("kernel_log", {}).get("findings", [])
    findings = tuple(
        FindingRecord(str(f.get("suite") or ""), str(f.get("case") or ""), str(f.get("kind") or ""),
                      str(f.get("signature")))
        for f in (raw_findings if isinstance(raw_findings, list) else [])
        if isinstance(f, dict) and f.get("signature"))
    code = results.get("exit_code")
    version = groups.get("build", {}).get("schema_version", 0)
    return RunRecord(
        schema_version=version if isinstance(version, int) else 0,
        exit_code=code if isinstance(code, int) else None,
        status=str(results.get("status") or "missing"),
        stages=stages,
        suites={k: v for k, v in suites.items() if isinstance(v, dict)} if isinstance(suites, dict) else {},
        findings=findings,
        groups=groups,
    )


def read_dict(run_dir: Path) -> dict[str, Any]:
    """``metadata.json`` of a run directory as parsed; ``{}`` when missing or unreadable."""
    try:
        data = json.loads((run_dir / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load(run_dir: Path | None) -> RunRecord:
    """The record of a run directory; an empty one when there is none to read."""
    if run_dir is None:
        return RunRecord(schema_version=0)
    return from_dict(read_dict(run_dir))
