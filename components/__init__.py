"""Thin KFP components over the kangaroo library: typed artifacts in and out, no business logic.

Every component reads its settings from the params YAML text passed as a pipeline parameter (the content of
params.yaml at compile time by default), so the config a run used is recorded in the run and is part of
every step's cache key. Lightweight components run their body in the project image (`cluster.image`), or
in this venv under KFP's local SubprocessRunner.
"""
