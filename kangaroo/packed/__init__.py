"""Packed training data: `kangaroo pack` writes bounded-size litdata shards (media bytes as they are + the
rows that talk about them) and a per-sample index; training stages stream them (kangaroo.train.stream).

See docs/data-formats.md ("Packed training data") for the layout.
"""
