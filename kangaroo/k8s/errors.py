"""Typed errors of the Kubernetes side: a cluster training job (Trainer v2 TrainJob or legacy PyTorchJob) that
cannot be built, created or followed, that failed, timed out, or whose launcher was stopped."""

from kangaroo.errors import KangarooError


class TrainingJobError(KangarooError):
    """A training job could not be built or created (bad name, API error); the message names the job."""


class TrainingJobFailed(TrainingJobError):
    """The controller reported the job Failed; the message carries its reason and message."""


class TrainingJobTimeout(TrainingJobError):
    """The job did not finish within the allowed time (cluster.job_timeout_s)."""


class LauncherStopped(TrainingJobError):
    """The launcher got SIGTERM (the KFP run was stopped): its job was deleted."""


# The PyTorchJob path (kubeflow.org/v1) raises the same errors under its historical names.
PyTorchJobError = TrainingJobError
PyTorchJobFailed = TrainingJobFailed
PyTorchJobTimeout = TrainingJobTimeout
