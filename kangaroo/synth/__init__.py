"""Deterministic sample corpus: real H.264 clips of coloured shapes with ground truth, plus planted bad inputs."""
