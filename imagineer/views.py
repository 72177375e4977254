from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from albums.selectors import album_cards, album_list
from generation.selectors import engine_status, runs_active, template_list
from imagineer.permissions import role_required

HOME_ALBUMS = 12


@require_safe
@role_required()
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "home.html",
        {
            "cards": album_cards(album_list()[:HOME_ALBUMS]),
            "templates": template_list(),
            "active_runs": list(runs_active()),
            "engine": engine_status(),
        },
    )
