"""Guest instruction counts for ``recharge-harness bench``: a noise-free hot-path measure.

Under TCG the wall-clock ratios of two boots scatter by several per cent, so a 1 %
goal cannot be judged by time.  The number of guest instructions executed for a
fixed amount of work does not depend on the host's load.  This package:

* builds the QEMU TCG plugin ``insncount_plugin.c`` (in ``harness/stages/``) on demand
  against the ``qemu-plugin.h`` of the installed QEMU, cached in
  ``<cache>/insncount/`` by QEMU version + hash of the plugin source and header
  (:func:`~harness.stages.insncount.plugin.prepare_plugin`); the header is taken from
  ``RECHARGE_QEMU_PLUGIN_H``, a system include directory, the cache, or extracted from
  the Debian source package of the installed QEMU (``apt-get source --download-only``
  with a private source list derived from the system's own apt sources:
  :mod:`~harness.stages.insncount.qemuheader`);
* gives the ``-plugin`` argument for QEMU (passed through vng ``--qemu-opts``);
* parses the plugin's output (one ``window ...`` line per measured window) and the
  ``# insnwin ...`` lines of ``selftests/bench/hotpath.c -i N``, pairs them by
  window id in order (:func:`~harness.stages.insncount.windows.match_windows`) and turns
  them into per-case metrics (instructions per 4 KiB page, per read, per
  ``folio_mark_accessed()``), pooled like the timed samples
  (:meth:`~harness.stages.insncount.windows.Session.attach`);
* computes patched / base instruction ratios and their goals
  (:mod:`~harness.stages.insncount.stats`) and the markdown table of ``bench.md``
  (:mod:`~harness.stages.insncount.report`).

See ``docs/instruction-count.md``.
"""

from __future__ import annotations

from harness.stages.insncount.plugin import Plugin, prepare_plugin
from harness.stages.insncount.report import markdown
from harness.stages.insncount.stats import goals, insn_stats, ratios
from harness.stages.insncount.windows import Session

__all__ = ["Plugin", "Session", "goals", "insn_stats", "markdown", "prepare_plugin", "ratios"]
