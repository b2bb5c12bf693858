"""Typed errors that the CLI turns into one clear line and a non-zero exit."""


class KangarooError(Exception):
    """Base of every error that names a bad input (a file, a key, an endpoint) rather than a bug."""


class InfrastructureError(KangarooError):
    """Storage, network or local disk failed after its retry budget. A failure of the step (non-zero exit,
    so KFP retries it), never a verdict on an input: nothing is written to a ledger for it."""
