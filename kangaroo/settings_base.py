"""Base class for every typed block of params.yaml."""

from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr


class Section(BaseModel):
    """A params.yaml block: unknown keys are errors, so a typo never silently falls back to a default.

    A block loaded from a step's resolved config (kangaroo.step_config) holds only the settings that step
    reads; reading another one raises instead of returning a default."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())
    _partial_scope: str | None = PrivateAttr(None)

    def __getattr__(self, name: str) -> Any:
        if name in type(self).model_fields:
            scope = (object.__getattribute__(self, "__pydantic_private__") or {}).get("_partial_scope")
            if scope:
                from kangaroo.step_config import StepScopeError

                raise StepScopeError(
                    f"{scope}: '{name}' is not a setting this step reads; add it to STEP_SETTINGS in "
                    "kangaroo/step_config.py if it should"
                )
        return super().__getattr__(name)
