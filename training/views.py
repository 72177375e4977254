"""Training pages: start from an album, follow a run (live loss chart), cancel/resume, files."""

from __future__ import annotations

import math
from typing import Any

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from albums.services.files import media_path
from imagineer import permissions as perms
from imagineer.errors import ApplicationError, form_add_application_error
from imagineer.permissions import TRAIN, SignedInRequest, role_required
from training.forms import TrainingStartForm
from training.models import CheckpointEntry, TrainingRun
from training.selectors import training_run_detail, training_run_list
from training.services.datasets import EXPORT_REPEATS, dataset_export_spooled, dataset_zip_name, trigger_word_default
from training.services.runs import training_cancel, training_resume, training_start

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 640, 200, 28
CHART_MAX_POINTS = 400


def _run(request: HttpRequest, pk: int) -> TrainingRun:
    """The run, or 404 when it does not exist or is someone else's (its owner and curators only)."""
    return get_object_or_404(perms.training_runs_visible(request.user, training_run_detail()), pk=pk)


def loss_chart(history: list[list[float]], max_steps: int) -> dict[str, Any] | None:
    """SVG polyline points for the loss and its running mean, scaled into the chart box."""
    points = [(step, loss) for step, loss in history if math.isfinite(loss)]
    if not points:
        return None
    stride = max(1, math.ceil(len(points) / CHART_MAX_POINTS))
    window = max(1, len(points) // 20)
    smooth, total = [], 0.0
    for index, (step, loss) in enumerate(points):
        total += loss
        if index >= window:
            total -= points[index - window][1]
        smooth.append((step, total / min(index + 1, window)))
    low, high = min(loss for _, loss in points), max(loss for _, loss in points)
    span = (high - low) or 1.0
    width, height = CHART_WIDTH - 2 * CHART_PAD, CHART_HEIGHT - 2 * CHART_PAD

    def scale(series: list[tuple[float, float]]) -> str:
        return " ".join(
            f"{CHART_PAD + width * step / max(max_steps, 1):.1f},{CHART_PAD + height * (1 - (loss - low) / span):.1f}"
            for step, loss in [*series[::stride], series[-1]]
        )

    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "pad": CHART_PAD,
        "right": CHART_WIDTH - CHART_PAD,
        "bottom": CHART_HEIGHT - CHART_PAD,
        "raw": scale(points),
        "smooth": scale(smooth),
        "low": low,
        "high": high,
        "max_steps": max_steps,
    }


def _progress_context(request: HttpRequest, run: TrainingRun) -> dict[str, Any]:
    return {
        "run": run,
        "chart": loss_chart(run.loss_history, run.max_steps),
        "can_control": perms.can_control(request.user, run),
        "checkpoints": list(reversed(run.checkpoints)),
    }


@require_safe
@role_required()
def run_list(request: HttpRequest) -> HttpResponse:
    runs = perms.training_runs_visible(request.user, training_run_list())[:100]
    context = {"runs": runs, "can_train": perms.can_act(request.user, TRAIN)}
    return render(request, "training/run_list.html", context)


@role_required(TRAIN)
def run_start(request: SignedInRequest, album_id: int) -> HttpResponse:
    album = get_object_or_404(perms.albums_visible(request.user), pk=album_id)
    form = TrainingStartForm(request.POST or None, album_name=album.name)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = training_start(
                album=album,
                name=data["name"],
                trigger_word=data["trigger_word"],
                base_model=data["base_model"],
                caption_source=data["caption_source"],
                sample_prompts=data["sample_prompts"],
                params=form.parameters(),
                created_by=request.user,
            )
        except ApplicationError as exc:
            form_add_application_error(form, exc)
        else:
            messages.success(request, f"Training “{run.name}” is queued on the GPU queue.")
            return redirect("training:run-detail", run.pk)
    image_count = album.memberships.count()
    return render(request, "training/run_start.html", {"album": album, "form": form, "image_count": image_count})


@require_safe
@role_required()
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(request, pk)
    return render(request, "training/run_detail.html", _progress_context(request, run))


@require_safe
@role_required()
def run_progress(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(request, pk)
    return render(request, "training/_run_progress.html", _progress_context(request, run))


@require_POST
@role_required(TRAIN)
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(request, pk)
    perms.ensure_can_control(request.user, run)
    try:
        training_cancel(run=run)
        messages.info(request, "Cancel requested: training stops after the current step and keeps its checkpoint.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("training:run-detail", pk)


@require_POST
@role_required(TRAIN)
def run_resume(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(request, pk)
    perms.ensure_can_control(request.user, run)
    try:
        run = training_resume(run=run)
        step = run.last_checkpoint["step"] if run.last_checkpoint else 0
        messages.info(request, f"Queued again; training continues from step {step}.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("training:run-detail", pk)


def _checkpoint(run: TrainingRun, step: int) -> CheckpointEntry:
    for checkpoint in run.checkpoints:
        if checkpoint["step"] == step:
            return checkpoint
    raise Http404("No checkpoint at that step.")


def _file(relative: str, content_type: str, *, attachment: bool, filename: str | None = None) -> FileResponse:
    try:
        path = media_path(relative)
    except ValueError:  # a symlink or ".." out of MEDIA_ROOT: as good as missing
        raise Http404("The file is missing on disk.") from None
    if not path.is_file():
        raise Http404("The file is missing on disk.")
    response = FileResponse(
        path.open("rb"), content_type=content_type, as_attachment=attachment, filename=filename or path.name
    )
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_safe
@role_required()
def checkpoint_file(request: HttpRequest, pk: int, step: int) -> FileResponse:
    run = _run(request, pk)
    checkpoint = _checkpoint(run, step)
    filename = f"{run.name}-step{step}.safetensors".replace("/", "-")
    return _file(checkpoint["file"], "application/octet-stream", attachment=True, filename=filename)


@require_safe
@role_required()
def sample_file(request: HttpRequest, pk: int, step: int, index: int) -> FileResponse:
    samples = _checkpoint(_run(request, pk), step).get("samples", [])
    if not 1 <= index <= len(samples):
        raise Http404("No such sample.")
    return _file(samples[index - 1], "image/png", attachment=False)


@require_safe
@role_required()
def dataset_export(request: HttpRequest, album_id: int) -> HttpResponseBase:
    album = get_object_or_404(perms.albums_visible(request.user), pk=album_id)
    try:
        handle = dataset_export_spooled(
            album=album,
            trigger_word=request.GET.get("trigger_word") or trigger_word_default(album),
            caption_source=request.GET.get("caption_source") or TrainingRun.CaptionSource.AUTO,
            repeats=request.GET.get("repeats") or EXPORT_REPEATS,
        )
    except ApplicationError as exc:
        messages.error(request, f"Cannot export the dataset: {exc.message}")
        return redirect("albums:album-detail", album.pk)
    return FileResponse(handle, as_attachment=True, filename=dataset_zip_name(album), content_type="application/zip")
