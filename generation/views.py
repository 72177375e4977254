"""Generation pages: templates and their generate form, run progress, single jobs, the jobs panel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from generation.forms import GenerateForm, RunStartForm
from generation.models import BatchGenerationRun, BatchTemplate, GenerationJob
from generation.selectors import (
    ACTIVE_RUN_STATUSES,
    job_history,
    job_list,
    job_queue,
    lora_list,
    run_list,
    run_progress,
    runs_active,
    runs_recent,
    template_list,
)
from generation.services.decks import slot_take_again
from generation.services.jobs import job_cancel, job_submit
from generation.services.recipes import image_regenerate
from generation.services.runs import run_cancel, run_retry, run_start
from generation.services.templates import template_row_prompt
from generation.services.themes import theme_random as random_theme
from imagineer import permissions as perms
from imagineer.errors import ApplicationError, form_add_application_error
from imagineer.permissions import GENERATE, AnyUser, SignedInRequest, role_required

JOB_HISTORY_LIMIT = 50


# --- templates ------------------------------------------------------------------------------


@require_safe
@role_required()
def template_list_page(request: HttpRequest) -> HttpResponse:
    return render(request, "generation/template_list.html", {"templates": template_list()})


def _template_rows(template: BatchTemplate, theme: str) -> list[dict[str, Any]]:
    """Each row's prompt for this theme, its CLIP token count and its 75-token chunks."""
    from generation.engine.clip_tokens import prompt_tokens

    folder = Path(settings.IMAGINEER_SD15_CONFIG_DIR) / "tokenizer"
    rows = []
    for index, row in enumerate(template.csv_data):
        prompt = template_row_prompt(
            base_prompt=template.base_prompt,
            prompt_template=template.prompt_template,
            style_suffix=template.style_suffix,
            theme=theme,
            row=row,
        )
        tokens = prompt_tokens(prompt, tokenizer_folder=folder)
        rows.append(
            {
                "number": index + 1,
                "values": [row.get(column, "") for column in template.columns],
                "prompt": prompt,
                "tokens": tokens.count,
                "chunks": tokens.chunks,
                "error": tokens.error,
            }
        )
    return rows


@require_safe
@role_required()
def template_rows_partial(request: HttpRequest, slug: str) -> HttpResponse:
    """The rows table for the theme being typed (HTMX, as the theme input changes)."""
    template = get_object_or_404(template_list(), slug=slug)
    theme = request.GET.get("theme", "").strip()[:500] or template.example_theme
    return render(
        request,
        "generation/_template_rows.html",
        {"template": template, "rows": _template_rows(template, theme), "theme": theme},
    )


@require_http_methods(["GET", "HEAD", "POST"])
@role_required()
def template_detail(request: SignedInRequest, slug: str) -> HttpResponse:
    template = get_object_or_404(template_list(), slug=slug)
    status = 200
    theme = (request.POST.get("theme", "").strip() if request.method == "POST" else "") or template.example_theme
    if request.method == "POST":
        perms.ensure_can_act(request.user, GENERATE)
        form = RunStartForm(request.POST, template=template)
        rows_choice = form.rows_choice() if form.is_valid() else {}
        if form.is_valid():
            try:
                run = run_start(
                    template=template,
                    theme=form.cleaned_data["theme"],
                    album_name=form.cleaned_data["album_name"] or None,
                    overrides=form.overrides(),
                    created_by=request.user,
                    **rows_choice,
                )
            except ApplicationError as exc:
                form_add_application_error(form, exc, aliases=form.error_aliases())
            else:
                return redirect("generation:run-detail", pk=run.pk)
        status = 400
    else:
        form = RunStartForm(template=template)
    return render(
        request,
        "generation/template_detail.html",
        {
            "template": template,
            "form": form,
            "rows": _template_rows(template, theme),
            "theme": theme,
        },
        status=status,
    )


@require_safe
@role_required(GENERATE)
def theme_random(request: HttpRequest) -> HttpResponse:
    """The theme input again, filled with a random theme (swapped in by HTMX)."""
    template = get_object_or_404(BatchTemplate, slug=request.GET.get("template", ""))
    form = RunStartForm(template=template, initial={"theme": random_theme()})
    return render(request, "generation/_theme_input.html", {"form": form, "template": template})


# --- runs -----------------------------------------------------------------------------------


def _run_context(run: BatchGenerationRun, user: AnyUser) -> dict[str, Any]:
    progress = run_progress(run=run)
    total = progress["total"] or 0
    percent = lambda count: round(100 * count / total, 1) if total else 0  # noqa: E731 - two uses below
    return {
        "run": run,
        "can_control": perms.can_control(user, run),
        "progress": progress,
        "finished": progress["status"] in BatchGenerationRun.FINISHED,
        "status_label": BatchGenerationRun.Status(progress["status"]).label,
        "done_percent": percent(progress["completed"]),
        "failed_percent": percent(progress["failed"]),
        "images": [item for item in progress["items"] if item.get("image_id")],
    }


def _run_get(pk: int) -> BatchGenerationRun:
    return get_object_or_404(run_list(), pk=pk)


@require_safe
@role_required()
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "generation/run_detail.html", _run_context(_run_get(pk), request.user))


@require_safe
@role_required()
def run_progress_partial(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "generation/_run_progress.html", _run_context(_run_get(pk), request.user))


@require_POST
@role_required(GENERATE)
def run_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run_get(pk)
    perms.ensure_can_control(request.user, run)
    try:
        run_cancel(run=run)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, "Cancelling: images already finished stay in the album.")
    if getattr(request, "htmx", False):
        # The confirm-then-cancel button on the run page: its final state in place, no reload.
        return render(request, "generation/_run_progress.html", _run_context(_run_get(pk), request.user))
    return redirect("generation:run-detail", pk=run.pk)


@require_POST
@role_required(GENERATE)
def run_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run_get(pk)
    perms.ensure_can_control(request.user, run)
    try:
        run_retry(run=run)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "The failed images are queued again.")
    return redirect("generation:run-detail", pk=run.pk)


@require_safe
@role_required()
def runs_active_partial(request: HttpRequest) -> HttpResponse:
    return render(request, "generation/_active_runs.html", {"active_runs": list(runs_active())})


# --- single jobs ----------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
@role_required(GENERATE)
def generate(request: SignedInRequest) -> HttpResponse:
    loras = list(lora_list())
    status = 200
    if request.method == "POST":
        form = GenerateForm(request.POST, loras=loras)
        if form.is_valid():
            data = form.cleaned_data
            try:
                job = job_submit(
                    prompt=data["prompt"],
                    negative_prompt=data["negative_prompt"],
                    width=data["width"],
                    height=data["height"],
                    steps=data["steps"],
                    guidance_scale=data["guidance_scale"],
                    seed=data["seed"],
                    loras=form.loras(),
                    scheduler=data["scheduler"] or None,
                    created_by=request.user,
                )
            except ApplicationError as exc:
                form_add_application_error(form, exc, aliases=form.error_aliases())
            else:
                messages.success(request, f"Job {job.pk} is queued (seed {job.seed}).")
                return redirect("generation:jobs")
        status = 400
    else:
        form = GenerateForm(loras=loras, initial=_initial_from_query(request))
    return render(request, "generation/generate.html", {"form": form}, status=status)


def _initial_from_query(request: HttpRequest) -> dict[str, str]:
    """Prefill from the query string, so a recipe can be opened in the form and tweaked."""
    fields = ("prompt", "negative_prompt", "width", "height", "steps", "guidance_scale", "seed")
    return {name: request.GET[name] for name in fields if request.GET.get(name)}


def _jobs_context(user: AnyUser) -> dict[str, Any]:
    runs = runs_recent()
    queue = job_queue(limit=JOB_HISTORY_LIMIT)
    return {
        "queue": queue,
        "cancellable": {job.pk for job in queue if not job.cancel_requested and perms.can_control(user, job)},
        "history": job_history(limit=JOB_HISTORY_LIMIT),
        "runs": runs,
        "active_runs": [run for run in runs if run.status in ACTIVE_RUN_STATUSES],
    }


@require_safe
@role_required()
def jobs(request: HttpRequest) -> HttpResponse:
    return render(request, "generation/jobs.html", _jobs_context(request.user))


@require_safe
@role_required()
def jobs_partial(request: HttpRequest) -> HttpResponse:
    return render(request, "generation/_jobs_panel.html", _jobs_context(request.user))


@require_POST
@role_required(GENERATE)
def job_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(job_list(), pk=pk)
    perms.ensure_can_control(request.user, job)
    try:
        job_cancel(job=job)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, f"Job {job.pk} is cancelled.")
    return redirect("generation:jobs")


@require_POST
@role_required(GENERATE)
def image_regenerate_view(request: SignedInRequest, pk: int) -> HttpResponse:
    """Generate again from an image's recipe: the same seed (same picture) or a new one."""
    image = get_object_or_404(perms.images_visible(request.user), pk=pk)
    new_seed = request.POST.get("seed") == "new"
    source = (
        GenerationJob.objects.select_related("slot__album", "slot__run", "init_image")
        .filter(result_image=image, slot__isnull=False)
        .first()
    )
    try:
        if source is not None and source.slot and perms.can_change_deck(request.user, source.slot.album):
            # A card's take: the new image is another take of the same card.
            job = slot_take_again(source=source, new_seed=new_seed, created_by=request.user)
        else:
            job = image_regenerate(image=image, new_seed=new_seed, created_by=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Job {job.pk} is queued with seed {job.seed}.")
        if job.slot_id and job.album_id and job.row_index is not None:
            return redirect(f"{reverse('albums:album-detail', args=[job.album_id])}#card-{job.row_index + 1}")
    return redirect("generation:jobs")
