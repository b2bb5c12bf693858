"""Thin KFP components over the kangaroo library: typed artifacts in and out, no business logic.

Every component reads its settings from its own step's resolved config (`step_config`, a JSON string the
pipeline's uncached first task `resolve_step_configs` emits from the params text, profile and overrides of
the run): the config a step used is recorded in the run, and its cache key changes exactly when its own
settings or the code version change. Lightweight components run their body in the project image (by
digest or commit tag: components/image.py), or in this venv under KFP's local SubprocessRunner.

A component never shares a name with a library function: where the library has the verb
(`evaluate_model`, `curate_shard`, `caption_shard`, `train_stage`, `version_dataset`), the component is the
noun (`model_evaluation`, `shard_curation`, `shard_captioning`, `stage_training`, `dataset_versioning`); a
CLI command function that would repeat a library name takes `_command`.
"""
