"""Version the packed training data (shards + index) with DVC (pushed to the MinIO remote) and pass its
version on to training."""

from kfp.dsl import Dataset, Input, Output

from components.image import project_component


@project_component
def dataset_versioning(
    step_config: str,
    dataset: Input[Dataset],
    remote: str,
    versioned: Output[Dataset],
) -> str:
    """`dvc add` + `dvc push` the dataset to the project's DVC remote `remote` (`''` = `storage.dvc_remote`,
    and if that is empty the project's default remote); the artifact holds the DVC workspace (`dataset/` +
    `dataset.dvc`); returns the DVC md5 every training stage records."""
    from kangaroo.config import load_params_text
    from kangaroo.storage.artifact_versioning import version_artifact

    params = load_params_text(step_config)
    remote = remote or params.storage.dvc_remote or None
    version = version_artifact(dataset.path, versioned.path, remote=remote)
    versioned.metadata.update({"dvc_md5": version.md5, "remote": version.remote or "default"})
    return version.md5
