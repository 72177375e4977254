from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from albums.selectors import album_cover_images, album_list
from generation.models import BatchTemplate


@login_required
def home(request: HttpRequest) -> HttpResponse:
    albums = list(album_list()[:12])
    covers = album_cover_images(albums)
    for album in albums:
        album.cover = covers.get(album.pk)
    templates = BatchTemplate.objects.prefetch_related("lora_stack__lora")
    return render(request, "home.html", {"albums": albums, "templates": templates})
