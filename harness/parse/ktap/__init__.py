"""KTAP / kselftest TAP parser: text -> tree of test cases.

Pure functions, no I/O.  Accepts what kselftest programs really print (see
docs/design.md):

* a ``TAP version 13`` / ``KTAP version 1`` header, or none at all (the 6.12
  ``test_memcontrol`` prints only ``ok N name`` lines and no plan);
* a ``1..N`` plan at the start or at the end, ``1..0 # SKIP reason``;
* directives after the name (``ok 1 name # SKIP why``, ``ok 1 - name # SKIP``)
  or before it, as ``kselftest.h`` prints them (``ok 3 # SKIP test_memcg_sock``,
  ``not ok 5 # error name``); SKIP, XFAIL, XPASS, TODO, TIMEOUT, ERROR;
* nesting by indentation (2 or 4 spaces) and by the ``# `` prefix that
  kselftest's runner puts in front of every line a program prints, so
  ``# ok 1 test_memcg_min`` lines become subtests of the runner's
  ``ok 1 selftests: cgroup: test_memcontrol``;
* ``Bail out!``, ``# Totals: pass:N ...``, several ``TAP version`` sections
  in a row (older runners restart numbering per collection);
* kernel printk lines (``[   12.345678] ...``) interleaved anywhere: ignored.

A plan larger than the number of results seen yields synthesised cases with
status ERROR (``missing=True``) and the error "plan said N, saw M".  Strict on
what would let an incomplete output pass: result numbers must run 1, 2, 3...
in each block (a repeat or a jump is an error), ``1..0`` without ``# SKIP`` is
an error, and an output with results but no plan (the 6.12 cgroup suites) that
ends with text after its last result was cut mid-test (an error).  A missing
plan by itself is not an error: the caller's inventory (harness.stages.inventory)
knows how many cases such a program reports.

Diagnostic lines (``# ...`` and any unknown text) belong to the next result
line at their level, as in KTAP; lines after the last result of a nested block
go to the parent case, lines after the last top-level result to
``KtapResult.diagnostics``.

Layout: :mod:`~harness.parse.ktap.model` (the result types),
:mod:`~harness.parse.ktap.lines` (one line at a time, also what a live progress display
reads), :mod:`~harness.parse.ktap.parser` (the tree).
"""

from __future__ import annotations

from harness.parse.ktap.lines import top_level_plan, top_level_result
from harness.parse.ktap.model import (
    KSFT_FAIL,
    KSFT_PASS,
    KSFT_SKIP,
    KSFT_XFAIL,
    KSFT_XPASS,
    CaseStatus,
    KtapCase,
    KtapResult,
)
from harness.parse.ktap.parser import parse_ktap

__all__ = [
    "KSFT_FAIL",
    "KSFT_PASS",
    "KSFT_SKIP",
    "KSFT_XFAIL",
    "KSFT_XPASS",
    "CaseStatus",
    "KtapCase",
    "KtapResult",
    "parse_ktap",
    "top_level_plan",
    "top_level_result",
]
