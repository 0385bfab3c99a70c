"""What a subcommand does: ``run`` (the pipeline of stages), ``compare``, ``patchcheck``,
``bisect``, ``bench``, ``merge``, ``mutants``, and the child runs they start."""
