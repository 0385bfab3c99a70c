"""The stages of a run, in the order users see them in the CLI and ``metadata.json``.

source -> apply -> config -> build -> selftests -> boot -> guest-setup -> suites;
beside boot the guest helpers (``ssh``, ``insncount``), beside config the profiles,
beside suites the inventory of expected cases.
"""
