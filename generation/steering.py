"""Hooks that steer a run's new jobs before they are saved (layout guides, from the cards app).

Generation does not know what steers it: an app registers a function in its
``AppConfig.ready()``; ``jobs_steer`` calls each with the run's template and its unsaved jobs,
and a hook may fill their ``guide``. Keeping the hook here keeps generation free of imports
from the apps that build on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from generation.models import BatchTemplate, GenerationJob

Steer = Callable[[BatchTemplate, Sequence[GenerationJob]], None]
_HOOKS: list[Steer] = []


def steer_register(hook: Steer) -> None:
    if hook not in _HOOKS:
        _HOOKS.append(hook)


def jobs_steer(template: BatchTemplate | None, jobs: Sequence[GenerationJob]) -> None:
    if template is None or not jobs:
        return
    for hook in _HOOKS:
        hook(template, jobs)
