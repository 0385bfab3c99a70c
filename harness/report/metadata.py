"""``metadata.json``: written at the start of a run, after every stage, and at the end.

Two levels, group -> key -> value (tuxmake style); ``build.schema_version`` is the
layout's version, and :func:`harness.record.load` reads it back typed.  Always atomic (tmp + rename),
so a killed run still leaves a readable file describing how far it got.  Thread-safe:
``--parallel`` runs its guests in threads (harness.stages.guests).
"""

from __future__ import annotations

import json
import shlex
import sys
import threading
import time
from pathlib import Path
from typing import Any

from harness.model import StageResult, SuiteRun
from harness.paths import atomic_write
from harness.record import SCHEMA_VERSION


class Metadata:
    def __init__(self, path: Path, argv: list[str]):
        self.path = path
        self._lock = threading.RLock()
        self.data: dict[str, Any] = {
            "build": {
                "schema_version": SCHEMA_VERSION,
                "reproducer_cmdline": shlex.join(["recharge-harness", *argv]),
                "python": sys.version.split()[0],
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
            "results": {"status": "running", "exit_code": None, "stages": {}, "suites": {}},
        }

    def set(self, group: str, key: str, value: Any) -> None:
        with self._lock:
            self.data.setdefault(group, {})[key] = value
            self.write()

    def put(self, key: str, value: Any) -> None:
        """A top-level value that is not a group (``merge``'s list of ``shards``)."""
        with self._lock:
            self.data[key] = value
            self.write()

    def update(self, group: str, values: dict[str, Any]) -> None:
        with self._lock:
            self.data.setdefault(group, {}).update(values)
            self.write()

    def stage(self, st: StageResult) -> None:
        with self._lock:
            self.data["results"]["stages"][st.name] = {
                "status": st.status.name,
                "duration_s": round(st.duration_s, 2),
                "log": str(st.log) if st.log else None,
                "detail": st.detail,
            }
            self.write()

    def suites(self, runs: list[SuiteRun], guests: dict[str, str] | None = None) -> None:
        """Per suite run: its outcome and duration; ``guests``: which guest ran it (suite ->
        ``guest-K``, ``--parallel``), so that the next run can balance its guests."""
        with self._lock:
            self.data["results"]["suites"] = {
                r.name: {
                    "status": r.status.name,
                    "duration_s": round(r.duration_s, 2),
                    "exit_code": r.exit_code,
                    "sysctl": r.sysctl,
                    "error": r.error,
                    **({"guest": guests[r.name]} if guests and r.name in guests else {}),
                }
                for r in runs
            }
            self.write()

    def finish(self, exit_code: int, verdict: str) -> None:
        with self._lock:
            self.data["results"]["status"] = verdict
            self.data["results"]["exit_code"] = exit_code
            self.data["build"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            self.write()

    def write(self) -> None:
        with self._lock:
            atomic_write(self.path, json.dumps(self.data, indent=2, sort_keys=False,
                                               default=str) + "\n")
