"""Pages of finished cards: finish a deck (design with a live preview, exports, hires), and a
finishing job's progress with its downloads.

Thin: look up and authorize (imagineer.permissions), call one service, render or redirect.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from albums.models import Album
from cards.models import (
    HIRES_DENOISE_MAX,
    HIRES_DENOISE_MIN,
    HIRES_SCALE_MAX,
    HIRES_SCALE_MIN,
    FinishingJob,
    LayoutGuide,
)
from cards.selectors import designs_visible, finishing_jobs_visible
from cards.services.finishing import EXPORT_FILES
from cards.services.guides import GUIDE_FIELDS, layout_guide_clear, layout_guide_image_add, layout_guide_save
from cards.services.jobs import finishing_cancel, finishing_start
from cards.services.sources import album_card_sources
from generation.models import BatchTemplate
from imagineer import permissions as perms
from imagineer.errors import ApplicationError
from imagineer.permissions import GENERATE, AnyUser, role_required

EXPORT_LABELS = {
    "zip": "Zip of card PNGs + back",
    "mpc": "MakePlayingCards (poker, 816x1110)",
    "drivethru": "DriveThruCards PDF",
    "pnp-a4": "Print-and-play PDF, A4",
    "pnp-letter": "Print-and-play PDF, US Letter",
    "tts": "Tabletop Simulator sheet",
}


def _float(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _album_designs(album: Album, user: AnyUser) -> list:
    run = album.generation_runs.order_by("created_at", "id").first()
    designs = designs_visible(user)
    if run is not None and run.template_id is not None:
        designs = designs.filter(template_id=run.template_id)
    return list(designs)


@require_http_methods(["GET", "POST"])
@role_required()
def finish_page(request: HttpRequest, album_pk: int) -> HttpResponse:
    album = get_object_or_404(perms.albums_visible(request.user), pk=album_pk)
    can_finish = perms.can_change_deck(request.user, album)
    designs = _album_designs(album, request.user)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        perms.ensure_can_change_deck(request.user, album)
        design = next((d for d in designs if str(d.pk) == request.POST.get("design")), None)
        if design is None:
            errors["design"] = ["Choose one of this deck's card designs."]
        else:
            try:
                job = finishing_start(
                    album=album,
                    design=design,
                    formats=request.POST.getlist("formats"),
                    duplex=bool(request.POST.get("duplex")),
                    force=bool(request.POST.get("force")),
                    hires=bool(request.POST.get("hires")),
                    hires_scale=_float(request.POST.get("hires_scale"), 2.0),
                    hires_denoise=_float(request.POST.get("hires_denoise"), 0.3),
                    created_by=perms.acting_user(request.user),
                )
            except ApplicationError as exc:
                errors = exc.fields or {"__all__": [exc.message]}
            else:
                messages.success(request, "Finishing queued.")
                return redirect("cards:job", pk=job.pk)
    sources = album_card_sources(album=album)
    context = {
        "album": album,
        "designs": designs,
        "cards": sources,
        "missing": [source for source in sources if source.image is None],
        "exports": [(name, EXPORT_LABELS[name]) for name in EXPORT_FILES],
        "chosen": request.POST.getlist("formats") if request.method == "POST" else list(EXPORT_FILES),
        "can_finish": can_finish,
        "errors": errors,
        "general_errors": errors.get("__all__", []),
        "jobs": list(finishing_jobs_visible(request.user, album).order_by("-created_at", "-id")[:10]),
        "hires_limits": (HIRES_SCALE_MIN, HIRES_SCALE_MAX, HIRES_DENOISE_MIN, HIRES_DENOISE_MAX),
    }
    return render(request, "cards/finish.html", context, status=400 if errors else 200)


def _job_context(job: FinishingJob, user: AnyUser) -> dict[str, Any]:
    total = job.progress_total or 0
    written = (job.result or {}).get("files", {})
    return {
        "job": job,
        "finished": job.is_finished,
        "can_control": perms.can_control(user, job),
        "percent": round(100 * job.progress_done / total, 1) if total else 0,
        # In the order they were asked for (jsonb does not keep the files' key order).
        "files": [(name, EXPORT_LABELS.get(name, name)) for name in job.formats if name in written],
        "missing": (job.result or {}).get("missing", []),
        "failed": (job.result or {}).get("failed", []),
    }


def _job_get(request: HttpRequest, pk: int) -> FinishingJob:
    return get_object_or_404(finishing_jobs_visible(request.user), pk=pk)


@require_safe
@role_required()
def job_page(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "cards/job.html", _job_context(_job_get(request, pk), request.user))


@require_safe
@role_required()
def job_progress_partial(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "cards/_job_progress.html", _job_context(_job_get(request, pk), request.user))


@require_POST
@role_required(GENERATE)
def job_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job_get(request, pk)
    perms.ensure_can_control(request.user, job)
    try:
        finishing_cancel(job=job)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, "Cancelling: cards already finished are kept.")
    return redirect("cards:job", pk=job.pk)


GUIDE_FLOAT_FIELDS = ("strength", "controlnet_scale", "control_start", "control_end")


def _guide_fields(post: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The guide's settings from a form, numbers parsed; a field that is not a number is named."""
    fields: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name in GUIDE_FIELDS:
        value = post.get(name)
        if value is None:
            continue
        if name in GUIDE_FLOAT_FIELDS:
            try:
                fields[name] = float(value)
            except ValueError:
                errors[name] = [f"{value!r} is not a number."]
        else:
            fields[name] = value.strip()
    return fields, errors


def _guide_page(
    request: HttpRequest, template: BatchTemplate, errors: dict[str, list[str]], values: dict[str, Any] | None = None
) -> HttpResponse:
    guide = LayoutGuide.objects.filter(template=template).prefetch_related("images").first()
    shown = guide or LayoutGuide(template=template, kind="none")
    row_count = len(template.csv_data)
    row = min(max(_int(request.GET.get("row"), 1), 1), max(row_count, 1))
    context = {
        "template": template,
        "guide": guide,
        "values": {name: getattr(shown, name) for name in GUIDE_FIELDS} | (values or {}),
        "kinds": [("none", "None: plain text-to-image"), *LayoutGuide.Kind.choices],
        "modes": LayoutGuide.Mode.choices,
        "images": list(guide.images.all()) if guide else [],
        "rows": [(index, _row_label(template, index)) for index in range(1, row_count + 1)],
        "row": row,
        "can_edit": perms.can_edit(request.user, template),
        "errors": errors,
        "general_errors": errors.get("__all__", []),
    }
    return render(request, "cards/guide.html", context, status=400 if errors else 200)


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _row_label(template: BatchTemplate, index: int) -> str:
    row = template.csv_data[index - 1]
    return " ".join(str(value) for value in list(row.values())[:3])


@require_http_methods(["GET", "POST"])
@role_required()
def guide_page(request: HttpRequest, template_pk: int) -> HttpResponse:
    """A template's layout guide: everyone signed in reads it; its owner or a curator sets it."""
    template = get_object_or_404(BatchTemplate, pk=template_pk)
    if request.method == "GET":
        return _guide_page(request, template, {})
    perms.ensure_can_act(request.user, GENERATE)
    perms.ensure_can_edit(request.user, template)
    fields, errors = _guide_fields(request.POST)
    if not errors:
        try:
            if fields.get("kind") == "none":
                layout_guide_clear(template=template)
            else:
                layout_guide_save(template=template, **fields)
        except ApplicationError as exc:
            errors = exc.fields or {"__all__": [exc.message]}
    if errors:
        return _guide_page(request, template, errors, fields)
    messages.success(request, "Layout guide saved.")
    return redirect("cards:guide", template_pk=template.pk)


@require_POST
@role_required(GENERATE)
def guide_image_upload(request: HttpRequest, template_pk: int) -> HttpResponse:
    template = get_object_or_404(BatchTemplate, pk=template_pk)
    perms.ensure_can_edit(request.user, template)
    guide = LayoutGuide.objects.filter(template=template).first()
    errors: dict[str, list[str]] = {}
    upload = request.FILES.get("file")
    if guide is None or guide.kind == LayoutGuide.Kind.PLAYING_CARDS:
        errors["file"] = ["Choose 'one image' or 'a column names an image' and save before uploading."]
    elif upload is None:
        errors["file"] = ["Choose an image file to upload."]
    else:
        try:
            layout_guide_image_add(guide=guide, name=request.POST.get("name", ""), upload=upload)
        except ApplicationError as exc:
            errors = exc.fields or {"__all__": [exc.message]}
    if errors:
        return _guide_page(request, template, errors)
    messages.success(request, "Layout image uploaded.")
    return redirect("cards:guide", template_pk=template.pk)
