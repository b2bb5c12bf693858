"""Version the gated dataset with DVC (pushed to the MinIO remote) and pass its version on to training."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components.image import project_component


@project_component
def version_dataset(dataset: Input[Dataset], remote: str, versioned: Output[Dataset]) -> str:
    """`dvc add` + `dvc push` the dataset; returns its DVC md5, recorded by every training stage."""
    import shutil

    from kangaroo.storage.versioning import version_dataset as dvc_version

    shutil.copytree(dataset.path, versioned.path)
    version = dvc_version(versioned.path, remote=remote or None)
    versioned.metadata.update({"dvc_md5": version.md5, "remote": version.remote or ""})
    return version.md5
