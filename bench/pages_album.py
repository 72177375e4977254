"""Album page server time with 54 images: ours (constant queries) vs a naive N+1 baseline.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/imagineer_bench .venv/bin/python bench/pages_album.py

Creates (and drops) a throwaway test database, fills one album with 54 real PNG images, signs a
viewer in, and times GET /albums/<id>/ through Django's full request stack (middleware, session,
permissions, template rendering). The baseline is the same page with the gallery's images loaded
lazily, one query per image, as a first implementation typically does.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagineer.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

IMAGES = 54
ROUNDS = 60


def measure(client: Client, url: str) -> tuple[list[float], int]:
    client.get(url)  # warm caches (templates, permissions)
    timings = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    return timings, len(queries)


def main() -> None:
    settings.MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="bench-media-"))
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from albums import views
        from albums.models import AlbumImage
        from imagineer.tests.factories import AlbumFactory, AlbumImageFactory, ImageFactory, UserFactory

        album = AlbumFactory.create(name="Bench deck", source_type="batch_generation")
        for position in range(IMAGES):
            AlbumImageFactory(album=album, position=position, image=ImageFactory(title=f"card {position}"))
        client = Client()
        client.force_login(UserFactory.create(role="viewer"))
        url = f"/albums/{album.pk}/"

        ours, ours_queries = measure(client, url)

        def naive(*, album, sort="position", nsfw="", label=""):
            return AlbumImage.objects.filter(album=album).order_by("position", "id")

        with mock.patch.object(views, "album_memberships", naive):
            baseline, baseline_queries = measure(client, url)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)

    def row(name: str, timings: list[float], queries: int) -> str:
        ordered = sorted(timings)
        p95 = ordered[int(len(ordered) * 0.95) - 1]
        return f"| {name:<22} | {queries:>7} | {statistics.median(timings):>9.1f} | {p95:>8.1f} |"

    print(f"Album page, {IMAGES} images, {ROUNDS} requests each, {connection.vendor}")
    print("| variant                | queries | median ms |  p95 ms |")
    print("|------------------------|---------|-----------|---------|")
    print(row("baseline (N+1 images)", baseline, baseline_queries))
    print(row("ours", ours, ours_queries))


if __name__ == "__main__":
    main()
