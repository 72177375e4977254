"""Scrape pages: start a scrape, follow it live (HTMX polls a small partial), cancel it."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from albums.models import Album, ScrapeJob
from albums.selectors import albums_newest_first, scrape_job_list, scrape_job_recent_images
from albums.services.scraping import LIMITS, scrape_job_cancel, scrape_job_create
from imagineer import permissions as perms
from imagineer.errors import ApplicationError, form_add_application_error
from imagineer.permissions import SCRAPE, AnyUser, SignedInRequest, role_required

RECENT_IMAGES = 12
RECENT_PROBLEMS = 10


class ScrapeForm(forms.Form):
    start_urls = forms.CharField(
        label="Start URLs",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "https://example.com/gallery"}),
        help_text="One per line (at most 20). Pages, or images themselves.",
    )
    album = forms.ModelChoiceField(
        queryset=Album.objects.none(), required=False, label="Add to album", empty_label="— a new album —"
    )
    album_name = forms.CharField(
        max_length=200, required=False, label="New album name", help_text="Used when no existing album is chosen."
    )
    max_images = forms.IntegerField(label="Most images", initial=100, min_value=LIMITS["max_images"][0])
    max_pages = forms.IntegerField(label="Most pages", initial=20, min_value=LIMITS["max_pages"][0])
    max_depth = forms.IntegerField(
        label="Link depth", initial=1, min_value=0, help_text="0: only the start pages; 1: also the pages they link to."
    )
    same_site_only = forms.BooleanField(label="Stay on the start pages' sites", initial=True, required=False)
    min_width = forms.IntegerField(label="Smallest width (px)", initial=128, min_value=1)
    min_height = forms.IntegerField(label="Smallest height (px)", initial=128, min_value=1)

    def __init__(self, *args: Any, user: AnyUser, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Scraping into an album adds images to it: only albums this user may change are offered.
        album_field = self.fields["album"]
        assert isinstance(album_field, forms.ModelChoiceField)
        album_field.queryset = perms.albums_editable(user, albums_newest_first())
        for name, (low, high) in LIMITS.items():
            field = self.fields[name]
            assert isinstance(field, forms.IntegerField)
            field.max_value = high
            self.fields[name].widget.attrs.update({"min": low, "max": high})


def _job_or_404(request: HttpRequest, pk: int) -> ScrapeJob:
    """The job, or 404 when it does not exist or is someone else's (its owner and curators only)."""
    return get_object_or_404(perms.scrape_jobs_visible(request.user, scrape_job_list()), pk=pk)


def _progress_context(request: HttpRequest, job: ScrapeJob) -> dict[str, Any]:
    recent = scrape_job_recent_images(job=job, limit=RECENT_IMAGES)
    return {
        "job": job,
        "finished": job.is_finished,
        # A finished crawl is done whether or not it reached its cap: the bar is full then, not "3%".
        "percent": 100.0
        if job.is_finished
        else (min(100.0, 100.0 * job.images_downloaded / job.max_images) if job.max_images else 0.0),
        "skip_reasons": sorted(job.skip_reasons.items(), key=lambda item: (-item[1], item[0])),
        "problems": list(reversed(job.errors[-RECENT_PROBLEMS:])),
        "recent": recent,
        "can_cancel": not job.is_finished and perms.can_control(request.user, job),
    }


@require_safe
@role_required()
def scrape_list(request: HttpRequest) -> HttpResponse:
    jobs = perms.scrape_jobs_visible(request.user, scrape_job_list())[:50]
    context = {"jobs": jobs, "can_scrape": perms.can_act(request.user, SCRAPE)}
    return render(request, "albums/scrape_list.html", context)


@require_http_methods(["GET", "POST"])
@role_required(SCRAPE)
def scrape_new(request: SignedInRequest) -> HttpResponse:
    form = ScrapeForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            job = scrape_job_create(user=request.user, **data)
        except ApplicationError as exc:
            form_add_application_error(form, exc)
        else:
            messages.success(request, f"Scraping into “{job.album.name}”.")
            return redirect("albums:scrape-detail", pk=job.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "albums/scrape_new.html", {"form": form}, status=status)


@require_safe
@role_required()
def scrape_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "albums/scrape_detail.html", _progress_context(request, _job_or_404(request, pk)))


@require_safe
@role_required()
def scrape_progress(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "albums/_scrape_progress.html", _progress_context(request, _job_or_404(request, pk)))


@require_POST
@role_required(SCRAPE)
def scrape_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job_or_404(request, pk)
    perms.ensure_can_control(request.user, job)
    try:
        scrape_job_cancel(job=job)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, "Cancelling: images already collected stay in the album.")
    return redirect("albums:scrape-detail", pk=job.pk)
