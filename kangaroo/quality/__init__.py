"""Caption quality gate: a Great Expectations suite over the captioned dataset, and the report people read."""

import logging

# GX logs every skipped docs-decorator registration at INFO when imported: noise in the gate's output.
logging.getLogger("great_expectations").setLevel(logging.WARNING)
