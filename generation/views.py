"""Generation pages: templates and their generate form, run progress, single jobs, the jobs panel."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from albums.models import Image
from generation.forms import GenerateForm, RunStartForm, form_add_application_error
from generation.models import BatchGenerationRun, BatchTemplate, GenerationJob, Lora
from generation.selectors import job_list, run_progress
from generation.services.jobs import job_cancel, job_submit
from generation.services.runs import run_cancel, run_retry, run_start
from generation.services.templates import template_row_prompt
from generation.services.themes import theme_random as random_theme
from imagineer.errors import ApplicationError
from imagineer.permissions import GENERATE, can_edit, ensure_can_act, ensure_can_edit, role_required

ACTIVE_RUN_STATUSES = (BatchGenerationRun.Status.QUEUED, BatchGenerationRun.Status.RUNNING)
ACTIVE_JOB_STATUSES = (GenerationJob.Status.QUEUED, GenerationJob.Status.RUNNING)
JOB_HISTORY_LIMIT = 50


def duration_text(seconds: float | None) -> str:
    """'2 min 05 s' style, for ETAs."""
    if seconds is None:
        return ""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


# --- templates ------------------------------------------------------------------------------


@require_safe
@role_required()
def template_list(request: HttpRequest) -> HttpResponse:
    templates = BatchTemplate.objects.prefetch_related("lora_stack__lora")
    return render(request, "generation/template_list.html", {"templates": templates})


def _template_rows(template: BatchTemplate, theme: str) -> list[dict[str, Any]]:
    return [
        {
            "number": index + 1,
            "values": [row.get(column, "") for column in template.columns],
            "prompt": template_row_prompt(
                base_prompt=template.base_prompt,
                prompt_template=template.prompt_template,
                style_suffix=template.style_suffix,
                theme=theme,
                row=row,
            ),
        }
        for index, row in enumerate(template.csv_data)
    ]


@require_http_methods(["GET", "HEAD", "POST"])
@role_required()
def template_detail(request: HttpRequest, slug: str) -> HttpResponse:
    template = get_object_or_404(BatchTemplate.objects.prefetch_related("lora_stack__lora"), slug=slug)
    status = 200
    if request.method == "POST":
        ensure_can_act(request.user, GENERATE)
        form = RunStartForm(request.POST, template=template)
        if form.is_valid():
            try:
                run = run_start(
                    template=template,
                    theme=form.cleaned_data["theme"],
                    album_name=form.cleaned_data["album_name"] or None,
                    overrides=form.overrides(),
                    created_by=request.user,
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
        {"template": template, "form": form, "rows": _template_rows(template, template.example_theme)},
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


def _run_context(run: BatchGenerationRun, user: Any) -> dict[str, Any]:
    progress = run_progress(run=run)
    total = progress["total"] or 0
    percent = lambda count: round(100 * count / total, 1) if total else 0  # noqa: E731 - two uses below
    return {
        "run": run,
        "can_control": can_edit(user, run),
        "progress": progress,
        "finished": progress["status"] in BatchGenerationRun.FINISHED,
        "status_label": BatchGenerationRun.Status(progress["status"]).label,
        "done_percent": percent(progress["completed"]),
        "failed_percent": percent(progress["failed"]),
        "eta": duration_text(progress.get("eta_seconds")),
        "images": [item for item in progress["items"] if item.get("image_id")],
    }


def _run_get(pk: int) -> BatchGenerationRun:
    return get_object_or_404(BatchGenerationRun.objects.select_related("album", "template", "created_by"), pk=pk)


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
    ensure_can_edit(request.user, run)
    try:
        run_cancel(run=run)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, "Cancelling: images already finished stay in the album.")
    return redirect("generation:run-detail", pk=run.pk)


@require_POST
@role_required(GENERATE)
def run_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run_get(pk)
    ensure_can_edit(request.user, run)
    try:
        run_retry(run=run)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "The failed images are queued again.")
    return redirect("generation:run-detail", pk=run.pk)


def active_runs() -> QuerySet[BatchGenerationRun]:
    return BatchGenerationRun.objects.filter(status__in=ACTIVE_RUN_STATUSES).select_related("album")


@require_safe
@role_required()
def runs_active_partial(request: HttpRequest) -> HttpResponse:
    return render(request, "generation/_active_runs.html", {"active_runs": list(active_runs())})


# --- single jobs ----------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
@role_required(GENERATE)
def generate(request: HttpRequest) -> HttpResponse:
    loras = list(Lora.objects.all())
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


def _jobs_context(user: Any) -> dict[str, Any]:
    jobs = job_list()
    runs = list(BatchGenerationRun.objects.select_related("album").order_by("-created_at", "-id")[:20])
    queue = list(jobs.filter(status__in=ACTIVE_JOB_STATUSES).order_by("created_at", "id")[:JOB_HISTORY_LIMIT])
    for job in queue:
        job.can_cancel = can_edit(user, job)
    return {
        "queue": queue,
        "history": list(jobs.exclude(status__in=ACTIVE_JOB_STATUSES)[:JOB_HISTORY_LIMIT]),
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
    job = get_object_or_404(GenerationJob, pk=pk)
    ensure_can_edit(request.user, job)
    try:
        job_cancel(job=job)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, f"Job {job.pk} is cancelled.")
    return redirect("generation:jobs")


@require_POST
@role_required(GENERATE)
def image_regenerate(request: HttpRequest, pk: int) -> HttpResponse:
    """Generate again from an image's recipe: the same seed (same picture) or a new one."""
    image = get_object_or_404(Image, pk=pk)
    job = GenerationJob.objects.filter(result_image=image).first()
    recipe = image.recipe or {}
    source = (
        {
            "prompt": job.prompt,
            "negative_prompt": job.negative_prompt,
            "width": job.width,
            "height": job.height,
            "steps": job.steps,
            "guidance_scale": job.guidance_scale,
            "seed": job.seed,
            "loras": job.lora_stack,
        }
        if job
        else {
            "prompt": image.prompt or recipe.get("prompt", ""),
            "negative_prompt": image.negative_prompt or recipe.get("negative_prompt", ""),
            "width": recipe.get("width", image.width),
            "height": recipe.get("height", image.height),
            "steps": recipe.get("steps", 25),
            "guidance_scale": recipe.get("guidance_scale", 8.0),
            "seed": recipe.get("seed"),
            "loras": recipe.get("loras", []),
        }
    )
    if not source["prompt"]:
        messages.error(request, "This image has no recipe to generate from.")
        return redirect("generation:jobs")
    stack = [entry for entry in source.pop("loras") or [] if isinstance(entry, dict)]
    by_name = {lora.name: lora for lora in Lora.objects.filter(name__in=[entry.get("name") for entry in stack])}
    missing = [entry.get("name") for entry in stack if entry.get("name") not in by_name]
    if missing:
        messages.error(
            request, f"LoRA {', '.join(map(str, missing))} is no longer in the library; cannot repeat this recipe."
        )
        return redirect("generation:jobs")
    if request.POST.get("seed") == "new":
        source["seed"] = None
    try:
        new_job = job_submit(
            **source,
            loras=[
                (by_name[entry["name"]], Decimal(str(entry.get("weight", by_name[entry["name"]].default_weight))))
                for entry in stack
            ],
            created_by=request.user,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("generation:jobs")
    messages.success(request, f"Job {new_job.pk} is queued with seed {new_job.seed}.")
    return redirect("generation:jobs")
