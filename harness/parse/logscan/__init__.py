"""Kernel-log classifier: finds oopses, sanitizer reports, lockdep splats, stalls...

Pure functions except :func:`load_ignore` (reads one file).  The catalogue
follows what syzkaller, LKP and NIPA look for:

=============  =============================================================
kind           report start (after the ``[   12.345678]`` timestamp)
=============  =============================================================
panic          ``Kernel panic - not syncing: ...`` (the only ``fatal`` kind)
reboot         a second ``Linux version ...`` banner (fatal)
kasan          ``BUG: KASAN: <type> in <func>``
kfence         ``BUG: KFENCE: ...``
kcsan, kmsan   ``BUG: KCSAN: ...``, ``BUG: KMSAN: ...``
ubsan          ``UBSAN: <kind> in <file>``
lockdep        ``WARNING: possible circular locking dependency detected``,
               recursive locking, inconsistent lock state, suspicious RCU
               usage, bad unlock balance, held lock freed, ...
atomic_sleep   ``BUG: sleeping function called from invalid context``,
               ``BUG: scheduling while atomic``
soft_lockup    ``BUG: soft lockup - CPU#N stuck for Ns!``
hard_lockup    ``watchdog: ... hard LOCKUP``
rcu_stall      ``rcu: INFO: rcu_preempt detected stalls``, self-detected,
               expedited
hung_task      ``INFO: task X:N blocked for more than N seconds.``
wq_lockup      ``BUG: workqueue lockup``
bad_page       ``BUG: Bad page state``, ``BUG: Bad page map``,
               ``BUG: Bad rss-counter state``
oops           ``BUG: kernel NULL pointer dereference``, ``BUG: unable to
               handle ...``, ``Oops: ...``, ``general protection fault``,
               ``invalid opcode:``, ``divide error:``, ``stack segment:``,
               ``PANIC: double fault``
bug            ``kernel BUG at <file>:<line>!``, any other ``BUG: ...``
kmemleak       ``unreferenced object 0x...``
warning        ``WARNING: CPU: N PID: N at <file>:<line> <func>`` (and the
               newer ``WARNING: <file>:<line> at <func>`` form)
oom            ``<task> invoked oom-killer:`` (informational, see
               :data:`INFO_KINDS`: the memcg OOM tests trigger it on purpose)
=============  =============================================================

A report is a block of lines: it starts at one of the lines above and ends at
``---[ end trace ... ]---``, at the closing ``=====`` line of sanitizer
reports, at the first ``</TASK>`` after its Call Trace, at the next report,
or after :data:`MAX_BLOCK_LINES` lines.  Header lines of the same crash
(``#PF:``, ``Oops:``, ``invalid opcode:``...) are absorbed into the block.

Signatures are normalised: no timestamps, addresses, hex values, numbers, PIDs,
CPU numbers or ``[task:pid]`` brackets; they end with up to five function
frames from the first Call Trace (helper frames such as ``dump_stack_lvl`` or
``__warn`` and ``?`` frames skipped), the RIP function first.

Findings with the same signature are reported once (``count`` tells how many).

Markers: the harness writes ``RECHARGE-HARNESS: begin <suite> <case>`` and
``RECHARGE-HARNESS: end <suite> <case>`` into the guest log (``/dev/kmsg``);
:func:`split_by_markers` and :func:`scan_by_case` assign each line to the
innermost open bracket, else to :data:`BOOT` (before the first marker) or
:data:`BETWEEN`.  ``<suite>`` is one token, ``<case>`` the rest of the line
(may contain spaces, may be empty).

Layout: :mod:`~harness.parse.logscan.catalogue` (the table above, and normalising),
:mod:`~harness.parse.logscan.scan` (blocks -> findings), :mod:`~harness.parse.logscan.markers`
and :mod:`~harness.parse.logscan.ignore`.
"""

from __future__ import annotations

from harness.parse.logscan.catalogue import normalize, strip_timestamp
from harness.parse.logscan.ignore import load_ignore
from harness.parse.logscan.markers import BETWEEN, BOOT, KERNEL_SUITE, MARKER, split_by_markers
from harness.parse.logscan.scan import (
    INFO_KINDS,
    MAX_BLOCK_LINES,
    Finding,
    is_failure,
    scan_by_case,
    scan_log,
)

__all__ = [
    "BETWEEN",
    "BOOT",
    "INFO_KINDS",
    "KERNEL_SUITE",
    "MARKER",
    "MAX_BLOCK_LINES",
    "Finding",
    "is_failure",
    "load_ignore",
    "normalize",
    "scan_by_case",
    "scan_log",
    "split_by_markers",
    "strip_timestamp",
]
