"""Errors for bad training inputs (a stage name, a data folder, a checkpoint), named in the message."""

from kangaroo.errors import KangarooError


class TrainInputError(KangarooError):
    """A training input is missing or malformed: the message names the file, folder or key and the cause."""
