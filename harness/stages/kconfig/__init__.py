"""The Kconfig language, as far as verifying a ``.config`` needs it.

``.config`` and fragment files, the options fragments request
(:mod:`~harness.stages.kconfig.fragments`), an index of the tree's Kconfig files
(``depends on``, ``select``, prompts: :mod:`~harness.stages.kconfig.index`),
``depends on`` expressions (:mod:`~harness.stages.kconfig.expr`), and
:func:`~harness.stages.kconfig.verify.verify`: did every requested value land, and if
not, why (the dependency with the current value of every symbol it mentions).  No I/O
but reading the tree.
"""

from __future__ import annotations

from harness.stages.kconfig.expr import eval_expr
from harness.stages.kconfig.fragments import Fragment, parse_config, requested_options
from harness.stages.kconfig.index import ARCH, KconfigIndex
from harness.stages.kconfig.verify import Problem, verify

__all__ = ["ARCH", "Fragment", "KconfigIndex", "Problem", "eval_expr", "parse_config",
           "requested_options", "verify"]
