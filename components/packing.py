"""Pack the gated dataset and the corpus into streamable training shards (`kangaroo pack`)."""

from kfp.dsl import Dataset, Input, Output

from components.image import project_component


@project_component
def pack_data(
    step_config: str,
    corpus_uri: str,
    dataset: Input[Dataset],
    publish_uri: str,
    packed: Output[Dataset],
):
    """Shards + index of the train split into `packed` (what dataset_versioning versions); with `publish_uri`
    (an s3:// prefix on MinIO) the same files are uploaded there too, for the stages to stream."""
    from pathlib import Path

    from kangaroo.config import load_params_text
    from kangaroo.packed.location import Location
    from kangaroo.packed.pack import pack_training_data

    params = load_params_text(step_config)
    manifest = pack_training_data(params, corpus_uri, packed.path, dataset=dataset.path, show_progress=False)
    if publish_uri:
        Location(publish_uri, params.storage).publish(Path(packed.path))
    packed.metadata.update(
        {
            "num_samples": manifest["num_samples"],
            "num_records": manifest["num_records"],
            "shards": len(manifest["shards"]),
            "rejected_media": len(manifest["rejected"]),
            "published": publish_uri,
        }
    )
