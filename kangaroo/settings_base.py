"""Base class for every typed block of params.yaml."""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A params.yaml block: unknown keys are errors, so a typo never silently falls back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())
