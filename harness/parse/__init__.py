"""Parsers of tool output: KTAP, the kernel log, compiler output, checkpatch."""
