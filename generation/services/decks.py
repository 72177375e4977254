"""Decks: a generated album seen card by card.

A slot is one template row of an album (``DeckSlot``); its takes are the GenerationJobs that
point at it (the run's job for the row, re-rolls, img2img variations), all on the one job
lifecycle; its pick is the image exports use (the first finished take until someone picks).

Locks: ``slot_pick`` and the take writers lock nothing beyond the rows they create or update;
``run_complete`` locks the run row (``select_for_update``) so two completes cannot both add
the same rows.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q

from albums.models import Album, AlbumImage, Image
from generation.models import BatchGenerationRun, BatchTemplate, DeckSlot, GenerationJob
from generation.services.jobs import (
    chunks_enqueue,
    configured_model_base,
    lora_stack_merge,
    seed_random,
    seed_validate,
)
from generation.services.prompt_loras import inline_loras_record, prompt_loras_resolve
from generation.services.templates import prompt_construct, prompt_render_row, template_placeholders
from generation.steering import jobs_steer
from imagineer.errors import ApplicationError, field_error
from imagineer.limits import limit_check

TAKES_MIN, TAKES_MAX = 1, 16
JobStatus = GenerationJob.Status
RunStatus = BatchGenerationRun.Status


# --- titles ---------------------------------------------------------------------------------


def title_template_validate(title_template: str, columns: Sequence[str]) -> None:
    if len(title_template) > 300:
        raise field_error(
            "title_template", f"The title template is {len(title_template)} characters; the limit is 300."
        )
    unknown = [name for name in template_placeholders(title_template, field="title_template") if name not in columns]
    if unknown:
        raise field_error(
            "title_template",
            f"The title template names {', '.join(unknown)}, not a column of the CSV ({', '.join(columns)}).",
        )


def title_render(title_template: str, row: Mapping[str, Any], columns: Sequence[str] = ()) -> str:
    """A card's title: the title template over the row, or the row's first column without one."""
    if title_template.strip():
        text = prompt_render_row(title_template, row)
    else:
        first = next(iter(columns), None)
        text = str(row.get(first, "")) if first is not None else str(next(iter(row.values()), ""))
    return " ".join(text.split())[:300]


_UNSAFE = re.compile(r"[^\w\s-]", re.UNICODE)


def title_file_stem(title: str, *, limit: int = 60) -> str:
    """A file-name-safe stem that keeps letters of every script: "Ace of Spades" -> "ace-of-spades",
    "牡羊座" -> "牡羊座", "الحمل" -> "الحمل"; "" only when the title has no letter or digit at all."""
    text = unicodedata.normalize("NFKC", title)
    text = _UNSAFE.sub("", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)[:limit].strip("-_")


# --- slots and runs -------------------------------------------------------------------------


def rows_select(
    *, total: int, rows: Sequence[int] | None = None, first: int | None = None, sample: int | None = None
) -> list[int]:
    """Which template rows a run makes (try first): all, chosen indices (from 0), the first N, or N at random."""
    given = [name for name, value in (("rows", rows), ("first", first), ("sample", sample)) if value is not None]
    if len(given) > 1:
        raise field_error(given[1], f"Choose rows one way: {' or '.join(given)}, not both.")
    if rows is not None:
        if not rows:
            raise field_error("rows", "Choose at least one row.")
        bad = [row for row in rows if not isinstance(row, int) or isinstance(row, bool) or not 0 <= row < total]
        if bad:
            raise field_error("rows", f"Row {bad[0]!r} is not a row of this template (0 to {total - 1}).")
        return sorted(set(rows))
    count = first if first is not None else sample
    if count is None:
        return list(range(total))
    field = "first" if first is not None else "sample"
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= total:
        raise field_error(field, f"{field.capitalize()} must be a whole number from 1 to {total}; got {count!r}.")
    if first is not None:
        return list(range(count))
    return sorted(random.SystemRandom().sample(range(total), count))


def slots_create(*, album: Album, run: BatchGenerationRun, template: BatchTemplate) -> list[DeckSlot]:
    """One slot per template row, titled, for a new deck (every row, also those not made yet)."""
    return DeckSlot.objects.bulk_create(
        DeckSlot(
            album=album,
            run=run,
            index=index,
            row=dict(row),
            title=title_render(template.title_template, row, template.columns),
        )
        for index, row in enumerate(template.csv_data)
    )


def run_jobs_build(
    *,
    run: BatchGenerationRun,
    slots: Sequence[DeckSlot],
    seeds: Mapping[int, int],
    created_by: User | None,
) -> list[GenerationJob]:
    """The run's job for each of these slots (unsaved), from the run's snapshot and settings."""
    params = run.overrides
    model = configured_model_base()
    jobs = []
    for slot in slots:
        row_text = prompt_render_row(run.template_snapshot["prompt_template"], slot.row)
        prompt, parts, stack = _row_prompt(run=run, slot=slot, row_text=row_text, model_base=model)
        jobs.append(
            GenerationJob(
                run=run,
                row_index=slot.index,
                slot=slot,
                album_id=run.album_id,
                prompt=prompt,
                negative_prompt=params["negative_prompt"],
                prompt_parts=parts,
                width=params["width"],
                height=params["height"],
                steps=params["steps"],
                progress_total=params["steps"],
                guidance_scale=params["guidance_scale"],
                seed=seeds[slot.index],
                scheduler=settings.IMAGINEER_SCHEDULER,
                lora_stack=stack,
                created_by=created_by,
            )
        )
    jobs_steer(run.template, jobs)
    return jobs


def run_style_suffix(run: BatchGenerationRun) -> str:
    """The run's style suffix: its override (a comparison variant's, say), else its template's."""
    return run.overrides.get("style_suffix", run.template_snapshot["style_suffix"])


def _row_prompt(
    *, run: BatchGenerationRun, slot: DeckSlot, row_text: str, model_base: str, row_field: str = "prompt_template"
) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """A card's prompt, its parts and its LoRA stack (the run's, with the prompt's <lora:...> tags merged in)."""
    snapshot = run.template_snapshot
    inline = prompt_loras_resolve(
        [
            ("base_prompt", snapshot["base_prompt"]),
            ("theme", run.theme),
            (row_field, row_text),
            ("style_suffix", run_style_suffix(run)),
        ]
    )
    parts = _prompt_parts(run, slot, row_text)
    if inline:
        parts["lora_tags"] = inline_loras_record(inline)
    prompt = prompt_construct(
        base_prompt=snapshot["base_prompt"],
        theme=run.theme,
        row_text=row_text,
        style_suffix=run_style_suffix(run),
    )
    return prompt, parts, lora_stack_merge(snapshot["loras"], inline, model_base=model_base)


def _prompt_parts(run: BatchGenerationRun, slot: DeckSlot, row_text: str) -> dict[str, Any]:
    snapshot = run.template_snapshot
    return {
        "base_prompt": snapshot["base_prompt"],
        "theme": run.theme,
        "row_text": row_text,
        "style_suffix": run_style_suffix(run),
        "row": dict(slot.row),
        "title": slot.title,
        "slot": slot.index,
    }


def _run_seed(run: BatchGenerationRun, index: int) -> int:
    """The seed the run's policy gives row ``index`` (for rows added later by complete)."""
    policy, base = run.overrides.get("seed_policy", "random"), run.overrides.get("seed")
    if policy == "random":
        return seed_random()
    if base is None:
        # run_start records the base seed of every non-random policy; older runs did not.
        return seed_random()
    return base if policy == "fixed" else (base + index) % 2**32


@transaction.atomic
def run_complete(*, run: BatchGenerationRun, created_by: User | None = None) -> BatchGenerationRun:
    """Make the rows a try-first run left out, into the same album; rows already made stay."""
    run = BatchGenerationRun.objects.select_for_update().get(pk=run.pk)
    if run.album_id is None:
        raise ApplicationError(f"Run {run.pk} has no album left to complete.")
    done = {index for index in run.jobs.values_list("row_index", flat=True) if index is not None}
    missing = list(DeckSlot.objects.filter(album_id=run.album_id).exclude(index__in=done).order_by("index"))
    if not missing:
        raise ApplicationError(f"Run {run.pk} already has every row of its deck.")
    limit_check(user=created_by or run.created_by, jobs=len(missing))
    jobs = GenerationJob.objects.bulk_create(
        run_jobs_build(
            run=run,
            slots=missing,
            seeds={slot.index: _run_seed(run, slot.index) for slot in missing},
            created_by=run.created_by,
        )
    )
    run.total_items += len(jobs)
    run.progress_total += sum(job.steps for job in jobs)
    run.cancel_requested, run.error = False, ""
    fields = ["total_items", "progress_total", "cancel_requested", "error"]
    if run.is_finished:
        run.status, run.finished_at = RunStatus.RUNNING, None
        fields += ["status", "finished_at"]
    run.save(update_fields=fields)
    album_cancelled_mark(album_id=run.album_id, cancelled=False)
    chunks_enqueue([job.pk for job in jobs])
    return run


# --- takes ----------------------------------------------------------------------------------


def _slot_source_run(slot: DeckSlot) -> BatchGenerationRun:
    run = slot.run
    if run is None:
        raise ApplicationError(f"Card {slot.title!r} has lost the run it came from; its settings are unknown.")
    needed = ("negative_prompt", "width", "height", "steps", "guidance_scale")
    if "prompt_template" not in run.template_snapshot or any(name not in run.overrides for name in needed):
        raise ApplicationError(
            f"Card {slot.title!r} comes from a run whose settings were not recorded; start a new run."
        )
    return run


def _take_job(
    *,
    slot: DeckSlot,
    seed: int,
    created_by: User | None,
    init_image: Image | None = None,
    strength: float | None = None,
    base: GenerationJob | None = None,
) -> GenerationJob:
    run = _slot_source_run(slot)
    snapshot, params = run.template_snapshot, run.overrides
    edit = slot.prompt_edit.strip()
    row_text = edit or prompt_render_row(snapshot["prompt_template"], slot.row)
    prompt, parts, stack = (
        (None, {}, [])
        if base is not None
        else _row_prompt(
            run=run,
            slot=slot,
            row_text=row_text,
            model_base=configured_model_base(),
            row_field="prompt_edit" if edit else "prompt_template",
        )
    )
    if init_image is not None:
        parts["init_image"] = init_image.pk
    job = GenerationJob(
        row_index=slot.index,
        slot=slot,
        album_id=slot.album_id,
        prompt=prompt or "",
        negative_prompt=params["negative_prompt"],
        prompt_parts=parts,
        width=params["width"],
        height=params["height"],
        steps=params["steps"],
        guidance_scale=params["guidance_scale"],
        seed=seed,
        scheduler=settings.IMAGINEER_SCHEDULER,
        lora_stack=stack,
        init_image=init_image,
        strength=strength,
        created_by=created_by,
    )
    job.progress_total = job.steps
    if base is not None:
        # A variation repeats its source take's recipe (prompt, size, steps, LoRAs), not the run's.
        for name in ("prompt", "negative_prompt", "width", "height", "steps", "guidance_scale", "scheduler"):
            setattr(job, name, getattr(base, name))
        job.lora_stack, job.progress_total = base.lora_stack, base.steps
        job.prompt_parts = {**base.prompt_parts, "init_image": init_image.pk if init_image else None}
    elif init_image is None:
        # A new take of a guided card is guided too (a variation starts from its source instead).
        jobs_steer(run.template, [job])
    return job


def takes_count_validate(count: Any) -> int:
    if not isinstance(count, int) or isinstance(count, bool) or not TAKES_MIN <= count <= TAKES_MAX:
        raise field_error("count", f"Count must be a whole number from {TAKES_MIN} to {TAKES_MAX}; got {count!r}.")
    return count


@transaction.atomic
def slots_takes_add(
    *, slots: Sequence[DeckSlot], count: int, prompt_edit: str | None = None, created_by: User | None
) -> list[GenerationJob]:
    """``count`` more takes with new seeds for each slot; ``prompt_edit`` (kept on the slot) replaces
    the row's text in their prompts ("" goes back to the row)."""
    count = takes_count_validate(count)
    if not slots:
        raise field_error("slots", "Choose at least one card.")
    limit_check(user=created_by, jobs=count * len(slots))
    if prompt_edit is not None:
        if len(prompt_edit) > settings.IMAGINEER_MAX_PROMPT_CHARS:
            raise field_error("prompt_edit", f"The prompt edit is {len(prompt_edit):,} characters; that is too long.")
        for slot in slots:
            slot.prompt_edit = prompt_edit.strip()
        DeckSlot.objects.bulk_update(slots, ["prompt_edit"])
    jobs = GenerationJob.objects.bulk_create(
        _take_job(slot=slot, seed=seed_random(), created_by=created_by) for slot in slots for _ in range(count)
    )
    chunks_enqueue([job.pk for job in jobs])
    return jobs


def strength_validate(strength: Any, *, steps: int) -> float:
    try:
        value = float(strength)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0 < value <= 1:
        raise field_error("strength", f"Strength must be in (0, 1] (above 0, at most 1); got {strength!r}.")
    if int(steps * value) < 1:
        raise field_error(
            "strength",
            f"At {steps} steps a strength of {value:g} repaints nothing; the lowest that works is {1 / steps:.3g}.",
        )
    return value


@transaction.atomic
def slot_vary(
    *,
    slot: DeckSlot,
    image: Image,
    strength: Any,
    seed: int | None = None,
    new_seed: bool = False,
    count: int = 1,
    created_by: User | None,
) -> list[GenerationJob]:
    """img2img takes from one of this slot's takes: the same seed as that take (default), a given
    seed, or new seeds; ``count`` variations."""
    count = takes_count_validate(count)
    source = GenerationJob.objects.filter(result_image=image).first()
    in_slot = (source is not None and source.slot_id == slot.pk) or slot.pick_id == image.pk
    if not in_slot:
        raise field_error("image", f"Image {image.pk} is not a take of card {slot.title!r}.")
    from albums.services.files import media_path

    try:
        present = media_path(image.file.name).is_file()
    except ValueError:
        present = False
    if not present:
        raise field_error("image", f"Image {image.pk}'s file is gone; choose another take to vary.")
    steps = source.steps if source is not None else _slot_source_run(slot).overrides["steps"]
    value = strength_validate(strength, steps=steps)
    if seed is not None:
        seed = seed_validate(seed)
    limit_check(user=created_by, jobs=count)
    seeds = []
    for index in range(count):
        if new_seed:
            seeds.append(seed_random())
        elif seed is not None:
            seeds.append((seed + index) % 2**32)
        else:
            seeds.append(((source.seed if source else seed_random()) + index) % 2**32)
    jobs = GenerationJob.objects.bulk_create(
        _take_job(slot=slot, seed=one, created_by=created_by, init_image=image, strength=value, base=source)
        for one in seeds
    )
    chunks_enqueue([job.pk for job in jobs])
    return jobs


def slot_pick(*, slot: DeckSlot, image: Image | None) -> DeckSlot:
    """Pick a take for this slot (``None``: back to the default, its first take).

    The image may come from another deck of the same template (a comparison cell); it then
    joins this album too, so the deck holds every image it uses.
    """
    if image is not None:
        takes = GenerationJob.objects.filter(result_image=image, slot__index=slot.index)
        # This card of this deck, or the same card of a deck of the same template (a comparison).
        same_deck = Q(slot__album_id=slot.album_id)
        template_id = slot.run.template_id if slot.run is not None else None
        same_template = Q(slot__run__template_id=template_id) if template_id is not None else Q(pk__in=[])
        if not takes.filter(same_deck | same_template).exists():
            raise field_error("image", f"Image {image.pk} is not a take of card {slot.index + 1} ({slot.title}).")
        if not AlbumImage.objects.filter(album_id=slot.album_id, image=image).exists():
            AlbumImage.objects.create(album_id=slot.album_id, image=image, position=slot.index + 1)
    slot.pick = image
    slot.save(update_fields=["pick"])
    return slot


def image_slot(*, image: Image) -> DeckSlot | None:
    """The slot whose take this image is, if any."""
    job = GenerationJob.objects.filter(result_image=image, slot__isnull=False).select_related("slot").first()
    return job.slot if job else None


@transaction.atomic
def slot_take_again(*, source: GenerationJob, new_seed: bool, created_by: User | None) -> GenerationJob:
    """Generate again from a take (its recipe, the same or a new seed) as a new take of its slot:
    "regenerate" on an image page lands beside the image, not in an album of its own."""
    slot = source.slot
    if slot is None:
        raise ApplicationError(f"Job {source.pk} is not a take of a deck's card.")
    limit_check(user=created_by, jobs=1)
    job = _take_job(
        slot=slot,
        seed=seed_random() if new_seed else source.seed,
        created_by=created_by,
        init_image=source.init_image,
        strength=source.strength,
        base=source,
    )
    job.save()
    chunks_enqueue([job.pk])
    return job


CANCELLED_MARK = " (cancelled before any image)"


def album_cancelled_mark(*, album_id: int | None, cancelled: bool) -> None:
    """A run cancelled before it made any image says so in its album's name (the home page would
    otherwise show an empty "No images yet" album); retrying or completing it takes the mark off."""
    if album_id is None:
        return
    album = Album.objects.filter(pk=album_id).first()
    if album is None:
        return
    marked = album.name.endswith(CANCELLED_MARK)
    if cancelled and not marked and not AlbumImage.objects.filter(album=album).exists():
        album.name = album.name[: 200 - len(CANCELLED_MARK)] + CANCELLED_MARK
    elif not cancelled and marked:
        album.name = album.name.removesuffix(CANCELLED_MARK)
    else:
        return
    album.save(update_fields=["name", "updated_at"])
