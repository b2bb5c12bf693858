"""Plots people would rather look at than tables, as PNG bytes for inlining into the HTML report."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import pandas as pd


def _png(figure) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def caption_length_histogram(words: pd.Series, min_words: int, max_words: int) -> bytes:
    """Histogram of caption lengths in words, with the gate's bounds drawn in."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.2))
    values = words.dropna()
    if len(values):
        # Integer-wide bins (at most ~40) from the lower bound to the longest caption, so bounds stay in view.
        low, high = min(values.min(), min_words), values.max()
        width = max(1, math.ceil((high - low + 1) / 40))
        axes.hist(values, bins=np.arange(low, high + width + 1, width) - 0.5, color="#4c72b0")
    axes.axvline(min_words, color="#c44e52", linestyle="--", label=f"min {min_words} words")
    if not len(values) or max_words <= values.max() * 1.2:
        axes.axvline(max_words, color="#c44e52", linestyle=":", label=f"max {max_words} words")
    axes.set_xlabel("caption length (words)")
    axes.set_ylabel("videos")
    axes.set_title(f"Caption length ({len(values)} captions)")
    axes.legend(loc="upper right", fontsize=8)
    return _png(figure)


def rejection_bar_chart(rejections: pd.Series, kept: int) -> bytes:
    """Inputs rejected per curation filter, next to the number kept."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["kept", *rejections.index.tolist()]
    counts = [kept, *rejections.tolist()]
    figure, axes = plt.subplots(figsize=(6, 0.4 * len(labels) + 1.2))
    colors = ["#55a868"] + ["#c44e52"] * len(rejections)
    axes.barh(labels[::-1], counts[::-1], color=colors[::-1])
    for y, count in enumerate(counts[::-1]):
        axes.text(count, y, f" {count}", va="center", fontsize=8)
    axes.set_xlabel("inputs")
    axes.set_title("Curation ledger: kept and rejected per filter")
    return _png(figure)


def alignment_histogram(own: pd.Series, others: pd.Series) -> bytes:
    """Caption scores against their own video and against random other videos: two humps when aligned."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.2))
    own, others = own.dropna(), others.dropna()
    values = np.concatenate([own.to_numpy(), others.to_numpy()])
    bins = np.linspace(values.min(), values.max(), 31) if len(values) else 10
    axes.hist(others, bins=bins, alpha=0.6, color="#8c8c8c", label="vs random other videos (mean)")
    axes.hist(own, bins=bins, alpha=0.7, color="#4c72b0", label="vs its own video")
    axes.set_xlabel("caption-video similarity (cosine)")
    axes.set_ylabel("captions")
    axes.set_title(f"Caption-video alignment ({len(own)} captions)")
    axes.legend(loc="upper left", fontsize=8)
    return _png(figure)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
