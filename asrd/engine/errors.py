"""ModelLoadError: a model could not be loaded, said so that the user can fix it.

Raised before FunASR is asked (a missing cache entry, an incomplete folder) because FunASR itself
prints and carries on: a hub id it cannot download becomes a confusing error much later, and a
folder without its weights silently becomes a model with random weights. No torch here.
"""

from __future__ import annotations

PULL_FIX = "run `asrd models pull` while online"


class ModelLoadError(Exception):
    """Which model (role + id), where asrd looked, what was wrong, and the fix."""

    def __init__(self, role: str, model: str, where: str, problem: str, fix: str):
        self.role, self.model, self.where, self.problem, self.fix = role, model, where, problem, fix
        super().__init__(f"cannot load the {role} model {model!r}: {problem} (looked in {where}); fix: {fix}")

    def __reduce__(self):
        """Pickle by the constructor's arguments (the default would pass only the message)."""
        return (type(self), (self.role, self.model, self.where, self.problem, self.fix))


def hub_fix(role: str) -> str:
    return f"{PULL_FIX}, or set model.{role} to a local model folder"


def folder_fix(role: str) -> str:
    return (f"point model.{role} at a complete model folder (config.yaml, the weights and the files "
            f"configuration.json names), or remove model.{role} to use the preset's hub model")
