"""Server time of GET /api/albums/<id> for a 54-image album (a card deck), in-process.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/imagineer .venv/bin/python bench/api_album_detail.py

Needs a migrated database; everything it creates is rolled back. "baseline" is the same
response built the naive way (album, then each membership's image fetched one by one);
"ours" is the API view. Times are the Django request cycle through the test client: no
network, so this is server time.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagineer.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402

# As in production: DEBUG would log every query and slow both variants down.
settings.DEBUG = False

from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from rest_framework.decorators import api_view  # noqa: E402
from rest_framework.response import Response  # noqa: E402

from albums.api.album_serializers import AlbumImageSerializer, AlbumSerializer  # noqa: E402
from albums.models import Album, AlbumImage, Image  # noqa: E402
from albums.selectors import albums_annotated  # noqa: E402
from imagineer.roles import user_set_role  # noqa: E402

IMAGES = 54
WARMUP, ROUNDS = 20, 200


@api_view(["GET"])
def baseline_view(request, pk: int) -> Response:
    """The N+1 way: one query per image."""
    album = albums_annotated().get(pk=pk)
    context = {"request": request}
    images = []
    for membership in AlbumImage.objects.filter(album=album).order_by("position", "id"):
        image = Image.objects.get(pk=membership.image_id)
        image.position = membership.position  # type: ignore[attr-defined]  # what the annotation gives ours
        images.append(image)
    data = AlbumSerializer(album, context=context).data
    data["images"] = {
        "count": len(images),
        "next": None,
        "previous": None,
        "results": AlbumImageSerializer(images, many=True, context=context).data,
    }
    return Response(data)


def measure(client: Client, call) -> tuple[float, float, int]:
    for _ in range(WARMUP):
        call(client)
    timings = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        response = call(client)
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.content[:500]
    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as queries:
        call(client)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.95)], len(queries)


def main() -> None:
    from django.contrib.auth import get_user_model
    from django.test.client import RequestFactory

    with transaction.atomic():
        user = get_user_model().objects.create_user(username="bench-album-detail")
        user_set_role(user=user, role="viewer")
        album = Album.objects.create(name="Bench deck", slug="bench-deck-api", source_type="batch_generation")
        images = Image.objects.bulk_create(
            Image(
                file=f"outputs/bench/{index:02d}.png",
                width=512,
                height=720,
                sha256=f"{index:064x}",
                prompt=f"card {index}, art deco, gold and black, high detail " * 3,
                recipe={"seed": index, "steps": 25, "loras": [{"name": "cards", "weight": "0.6"}]},
            )
            for index in range(IMAGES)
        )
        AlbumImage.objects.bulk_create(
            AlbumImage(album=album, image=image, position=index) for index, image in enumerate(images)
        )
        client = Client()
        client.force_login(user)
        factory = RequestFactory()

        def ours(c: Client):
            return c.get(f"/api/albums/{album.pk}", {"page_size": IMAGES})

        def baseline(c: Client):
            request = factory.get(f"/api/albums/{album.pk}")
            request.user = user
            request.session = c.session
            response = baseline_view(request, pk=album.pk)
            response.render()
            return response

        rows = [("baseline (N+1)", *measure(client, baseline)), ("ours (API view)", *measure(client, ours))]
        transaction.set_rollback(True)

    print(f"GET /api/albums/<id> with {IMAGES} images, {ROUNDS} rounds, {connection.vendor}")
    print(f"{'variant':<18} {'median ms':>10} {'p95 ms':>8} {'queries':>8}")
    for name, median, p95, queries in rows:
        print(f"{name:<18} {median:>10.2f} {p95:>8.2f} {queries:>8}")


if __name__ == "__main__":
    main()
