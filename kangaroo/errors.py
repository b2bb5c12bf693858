"""Typed errors that the CLI turns into one clear line and a non-zero exit."""


class KangarooError(Exception):
    """Base of every error that names a bad input (a file, a key, an endpoint) rather than a bug."""
