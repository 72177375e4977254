"""Labeler backends behind one interface: ``label(image_path, prompt_type) -> LabelResult``.

Chosen by ``IMAGINEER_LABELER`` (or per call): ``claude-docker``, ``claude-cli``, ``local``.
"""

from __future__ import annotations

from django.conf import settings

from labeling.backends.base import (
    NSFW_RATINGS,
    PROMPT_TYPES,
    Labeler,
    LabelError,
    LabelParseError,
    LabelResult,
    TransientLabelError,
)

BACKENDS = ("claude-docker", "claude-cli", "local")
AI_SOURCES = BACKENDS

__all__ = [
    "AI_SOURCES",
    "BACKENDS",
    "NSFW_RATINGS",
    "PROMPT_TYPES",
    "LabelError",
    "LabelParseError",
    "LabelResult",
    "Labeler",
    "TransientLabelError",
    "labeler_get",
]


def labeler_get(backend: str | None = None) -> Labeler:
    name = backend or settings.IMAGINEER_LABELER
    if name == "claude-docker":
        from labeling.backends.claude_docker import ClaudeDockerLabeler

        return ClaudeDockerLabeler()
    if name == "claude-cli":
        from labeling.backends.claude_cli import ClaudeCliLabeler

        return ClaudeCliLabeler()
    if name == "local":
        from labeling.backends.local import LocalLabeler

        return LocalLabeler()
    raise LabelError(f"Unknown labeler {name!r}; choose one of {', '.join(BACKENDS)}.", code="invalid_backend")
