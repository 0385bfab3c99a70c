"""The skeleton every mode shares: a numbered run directory, one run record, one exit code.

``run`` and the CI modes (``compare``, ``patchcheck``, ``bisect``, ``bench``, ``merge``,
``mutants``) all write into ``<out>/<N>/`` (:func:`make_run_dir`, race-free) a
``metadata.json`` that :func:`harness.record.load` reads back: written at the start,
and finished with the mode's exit code and verdict word, also when the mode dies
(then "no verdict", exit 2, and the error).  ``summary.txt`` is written atomically;
``junit.xml`` by :func:`harness.report.junit.write_xml`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import EXIT_NO_VERDICT, HarnessError
from harness.model import Options
from harness.paths import atomic_write
from harness.report.metadata import Metadata

LOG_FORMAT = "%(asctime)s %(levelname).1s %(name)s: %(message)s"


def make_run_dir(out: Path) -> Path:
    """``out/<N>`` with N one more than the highest existing; mkdir is the arbiter."""
    out.mkdir(parents=True, exist_ok=True)
    nums = [int(p.name) for p in out.iterdir() if p.name.isdigit()]
    n = max(nums, default=0) + 1
    while True:
        d = out / str(n)
        try:
            d.mkdir()
            break
        except FileExistsError:
            n += 1
    latest = out / "latest"
    tmp = out / f".latest.{os.getpid()}"
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(str(n))
        os.replace(tmp, latest)
    except OSError:
        pass
    return d


@contextlib.contextmanager
def file_log(path: Path) -> Iterator[logging.Handler]:
    """Everything logged (debug level included) also goes to ``path`` while the block runs."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


@dataclass
class ModeRun:
    """A mode's run directory and its record, until :meth:`finish`."""

    command: str
    run_dir: Path
    meta: Metadata
    finished: bool = False

    def path(self, name: str) -> Path:
        return self.run_dir / name

    def write_summary(self, text: str) -> None:
        atomic_write(self.path("summary.txt"), text)

    def finish(self, code: int, verdict: str,
               group: tuple[str, dict[str, Any]] | None = None) -> None:
        """Record the mode's own results (``group``), its exit code and verdict word."""
        if group is not None:
            self.meta.update(*group)
        self.meta.finish(code, verdict)
        self.finished = True


def open_record(run_dir: Path, command: str, argv: tuple[str, ...] | list[str],
                **build: Any) -> ModeRun:
    """A run record for ``run_dir`` (``metadata.json`` written now)."""
    meta = Metadata(run_dir / "metadata.json", list(argv))
    meta.update("build", {"command": command, "run_dir": str(run_dir), **build})
    return ModeRun(command, run_dir, meta)


@contextlib.contextmanager
def mode_run(opts: Options, command: str, *, run_dir: Path | None = None,
             log_name: str | None = None, **build: Any) -> Iterator[ModeRun]:
    """A new numbered run directory under ``opts.out`` (or ``run_dir``) with its record.

    ``log_name``: a debug log of the whole mode in the run directory.  Leaving the
    block without :meth:`ModeRun.finish` (an exception, Ctrl-C) records "no verdict".
    """
    d = run_dir or make_run_dir(opts.out)
    mr = open_record(d, command, opts.argv, **build)
    with contextlib.ExitStack() as stack:
        if log_name:
            stack.enter_context(file_log(d / log_name))
        try:
            yield mr
        except BaseException as e:
            if not mr.finished:
                why = e.describe() if isinstance(e, HarnessError) else \
                    "interrupted by SIGINT" if isinstance(e, KeyboardInterrupt) else \
                    f"{type(e).__name__}: {e}"
                mr.meta.set("results", "error", why)
                mr.finish(EXIT_NO_VERDICT, "no verdict")
            raise
        if not mr.finished:
            mr.finish(EXIT_NO_VERDICT, "no verdict")
