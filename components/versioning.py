"""Version the gated dataset with DVC (pushed to the MinIO remote) and pass its version on to training."""

from kfp.dsl import Dataset, Input, Output

from components.image import project_component


@project_component
def version_dataset(dataset: Input[Dataset], remote: str, versioned: Output[Dataset]) -> str:
    """`dvc add` + `dvc push` the dataset to the project's DVC remote (`''` = its default remote); the
    artifact holds the DVC workspace (`dataset/` + `dataset.dvc`); returns the DVC md5 every stage records."""
    from kangaroo.storage.artifact_versioning import version_artifact

    version = version_artifact(dataset.path, versioned.path, remote=remote or None)
    versioned.metadata.update({"dvc_md5": version.md5, "remote": version.remote or "default"})
    return version.md5
