"""Layout guides steering generation: the hook ``generation.steering`` calls for a run's new jobs.

A template with a ``LayoutGuide`` gets, on each job of a row, the guide of that row rendered at
the job's size and stored once under ``guides/<template>/<sha256>.png``, with how it steers:

* ``img2img``: the guide is the init image and ``strength`` says how far generation may move
  away from it (A1111's ``Denoising strength``);
* ``controlnet`` (when the guide asks for it and ``IMAGINEER_CONTROLNET`` names a model): the
  guide is the control image, with ``scale`` (conditioning scale), ``start`` and ``end``.

What is written on the job is what the worker does and what the recipe records, so the image
can be made again from its sidecar alone.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from typing import Any

from django.conf import settings

from albums.services.files import atomic_write, media_path
from cards.models import LayoutGuide
from cards.services.guides import guide_image_for_row
from generation.models import BatchTemplate, GenerationJob


def guide_store(*, template: BatchTemplate, image: Any) -> tuple[str, str]:
    """Write a rendered guide once (named by its content); returns (media path, sha256)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    relative = f"guides/{template.slug or template.pk}/{digest[:24]}.png"
    path = media_path(relative)
    if not path.is_file():
        with atomic_write(path) as handle:
            handle.write(data)
    return relative, digest


def guide_settings(guide: LayoutGuide) -> dict[str, Any]:
    """How this guide steers a job now (ControlNet only when one is configured)."""
    if guide.mode == LayoutGuide.Mode.CONTROLNET and settings.IMAGINEER_CONTROLNET:
        return {
            "mode": "controlnet",
            "scale": guide.controlnet_scale,
            "start": guide.control_start,
            "end": guide.control_end,
        }
    return {"mode": "img2img", "strength": guide.strength}


def run_jobs_guide(template: BatchTemplate, jobs: Sequence[GenerationJob]) -> None:
    """``generation.steering`` hook: fill ``job.guide`` for the rows of a guided template."""
    guide = LayoutGuide.objects.filter(template=template).first()
    if guide is None:
        return
    how = guide_settings(guide)
    rendered: dict[tuple[int, int, int], tuple[str, str]] = {}
    for job in jobs:
        if job.row_index is None or job.row_index >= len(template.csv_data):
            continue
        key = (job.row_index, job.width, job.height)
        if key not in rendered:
            image = guide_image_for_row(guide=guide, row_index=job.row_index, size=(job.width, job.height))
            rendered[key] = guide_store(template=template, image=image)
        relative, digest = rendered[key]
        job.guide = {**how, "kind": guide.kind, "image": relative, "sha256": digest}
