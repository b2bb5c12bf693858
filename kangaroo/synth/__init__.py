"""Deterministic sample corpus: real H.264 clips of coloured shapes, ground truth, planted bad inputs."""
