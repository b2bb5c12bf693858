"""Caption-video alignment: a CLIP-family model (CLIP, SigLIP) scores how well a caption matches its video's
key frames. Captioning stores each video's embedding and score in dataset.jsonl; the quality gate re-embeds
the captions it gates and compares each against its own video and against other videos."""

from kangaroo.curation.alignment.scorer import (
    AlignmentScorer,
    decode_embedding,
    encode_embedding,
    load_alignment,
)

__all__ = ["AlignmentScorer", "decode_embedding", "encode_embedding", "load_alignment"]
