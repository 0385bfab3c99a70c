"""The run record: written by Metadata during a run, read back typed by load()."""

from __future__ import annotations

import json
from pathlib import Path

from harness import record
from harness.model import StageResult, Status, SuiteRun
from harness.report.metadata import Metadata


def test_written_then_loaded(tmp_path: Path) -> None:
    meta = Metadata(tmp_path / "metadata.json", ["run", "--suite", "recharge"])
    meta.stage(StageResult("source", Status.PASS, 1.234, None, "debian 6.12"))
    meta.stage(StageResult("build", Status.ERROR, 2.0, tmp_path / "build.log", "make failed"))
    meta.suites([SuiteRun("recharge[sysctl=1]", Status.NOTRUN, 0.0, "", None, "not run", 1, None)])
    meta.update("kernel_log", {"findings": [
        {"suite": "s", "case": "c", "kind": "warning", "signature": "WARNING in f"},
        {"suite": "s", "case": "d", "kind": "oom", "signature": "memcg oom"},
        {"suite": "s", "case": "e", "kind": "bug"},  # no signature: not a finding
    ]})
    meta.finish(2, "no verdict")
    rec = record.load(tmp_path)
    assert rec.schema_version == record.SCHEMA_VERSION
    assert (rec.exit_code, rec.status) == (2, "no verdict")
    assert list(rec.stages) == ["source", "build"]
    assert rec.stages["source"].duration_s == 1.23
    assert rec.failed_stage() == ("build", "make failed")
    assert rec.suites["recharge[sysctl=1]"]["status"] == "NOTRUN"
    assert [f.signature for f in rec.failing_findings()] == ["WARNING in f"]
    assert len(rec.findings) == 2
    assert rec.group("build")["reproducer_cmdline"] == "recharge-harness run --suite recharge"


def test_missing_or_broken_file_is_an_empty_record(tmp_path: Path) -> None:
    assert record.load(None).exit_code is None
    assert record.load(tmp_path).status == "missing"
    (tmp_path / "metadata.json").write_text("{not json")
    rec = record.load(tmp_path)
    assert rec.exit_code is None and rec.stages == {} and rec.failed_stage() is None


def test_file_without_version_is_version_0_and_odd_types_read_as_absent(tmp_path: Path) -> None:
    (tmp_path / "metadata.json").write_text(json.dumps({
        "build": {}, "results": {"exit_code": "1", "stages": {"x": "PASS"}, "suites": []},
        "kernel_log": {"findings": "none"}}))
    rec = record.load(tmp_path)
    assert rec.schema_version == 0
    assert rec.exit_code is None and rec.stages == {} and rec.suites == {} and rec.findings == ()
