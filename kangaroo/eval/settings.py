"""Typed `eval:` block of params.yaml: how every checkpoint is scored, so numbers stay comparable."""

from typing import Literal

from kangaroo.eval.controls import TemporalControl
from kangaroo.settings_base import Section


class EvalSettings(Section):
    # Frames per question: uniform over the clip (or its start/end window), capped at `max_fps` so a short
    # clip is not over-sampled. Recorded with every score: published numbers move ~2 points with frames.
    num_frames: int = 16
    max_fps: float = 1.0
    # Square side the frames are resized to before the processor; 0 = the model's own vision image size.
    frame_size: int = 0
    batch_size: int = 16
    # Prompt wording: "auto" = the benchmark's lmms-eval wording (Video-MME's own, MVBench's for the rest,
    # which is also how the instruction data is rendered); or force "mvbench" / "videomme".
    prompt_template: Literal["auto", "mvbench", "videomme"] = "auto"
    # lmms-eval's MVBench/Video-MME settings: greedy decoding, 16 new tokens.
    max_new_tokens: int = 16
    # Which mode's accuracy is the headline `accuracy` in metrics.json. Likelihood has no parse failures,
    # so a weak checkpoint is measured on what it knows rather than on whether it learnt the answer format.
    headline_mode: Literal["likelihood", "generation"] = "likelihood"
    # Likelihood ranking: "mean" = mean token log-prob of the option (lmms-eval mcppl: lowest loss wins;
    # immune to option length), "sum" = total log-prob. Both are always reported; this one is the headline.
    likelihood_normalisation: Literal["mean", "sum"] = "mean"
    # The continuation scored in likelihood mode: "trained_reply" = exactly the reply the instruction data
    # teaches (kangaroo.train.data.render_answer, e.g. "red (B)"), "option" = the option text alone
    # (lmms-eval mcppl), "letter_option" = "(B) red", "letter" = "B".
    likelihood_continuation: Literal["trained_reply", "option", "letter_option", "letter"] = "trained_reply"
    # Category name of the long-video probes in the sample corpus (reported separately as `long_video`): the
    # long clips' timestamp questions, not the 8 s motion clips' (category "timestamp").
    long_video_category: str = "long_timestamp"
    # Where benchmark files read from S3/MinIO are cached.
    cache_dir: str = "work/cache/benchmarks"
    # Bias control: the accuracy of a random model must fall inside chance +/- this many binomial standard
    # deviations (3 sigma: a false alarm 1 time in ~370 per check), and the done-check of a trained model
    # requires accuracy >= min_ratio_over_chance x chance.
    chance_sigma: float = 3.0
    min_ratio_over_chance: float = 2.0
    # Temporal controls (kangaroo.eval.controls): after the normal pass, score the questions again with the
    # frames shuffled / reversed or every timestamp the same; metrics.json reports each under
    # `temporal_controls`. Direction/order/timestamp should fall to chance, shape/colour/count should not.
    temporal_controls: list[TemporalControl] = []
