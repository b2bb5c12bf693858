"""Typed errors of the Kubernetes side: a PyTorchJob that cannot be built, created, or that failed."""

from kangaroo.errors import KangarooError


class PyTorchJobError(KangarooError):
    """A PyTorchJob could not be built or created (bad name, API error); the message names the job."""


class PyTorchJobFailed(PyTorchJobError):
    """The training operator reported the job Failed; the message carries its reason and message."""


class PyTorchJobTimeout(PyTorchJobError):
    """The job did not finish within the allowed time (cluster.pytorchjob_timeout_s)."""
