from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from albums.selectors import album_cover_images, album_list
from generation.models import BatchTemplate
from generation.selectors import engine_status
from generation.views import active_runs
from imagineer.permissions import role_required

HOME_ALBUMS = 12


@require_safe
@role_required()
def home(request: HttpRequest) -> HttpResponse:
    albums = list(album_list()[:HOME_ALBUMS])
    covers = album_cover_images(albums)
    for album in albums:
        album.cover = covers.get(album.pk)
    templates = BatchTemplate.objects.prefetch_related("lora_stack__lora")
    return render(
        request,
        "home.html",
        {"albums": albums, "templates": templates, "active_runs": list(active_runs()), "engine": engine_status()},
    )
