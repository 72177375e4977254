"""Legacy /api/batches: batch_generation albums in the original's shape."""

from __future__ import annotations

import pytest

from albums.models import Album
from imagineer.tests.factories import AlbumFactory, AlbumImageFactory, ImageFactory

pytestmark = pytest.mark.django_db


def test_batches_lists_only_batch_generation_albums(api_as):
    client = api_as("viewer")
    batch = AlbumFactory(name="Deck", slug="deck", source_type=Album.SourceType.BATCH_GENERATION)
    AlbumImageFactory(album=batch)
    AlbumFactory(source_type=Album.SourceType.SCRAPE)
    body = client.get("/api/batches").json()
    assert body["count"] == 1
    assert body["batches"] == [
        {
            "batch_id": "deck",
            "album_id": batch.pk,
            "name": "Deck",
            "image_count": 1,
            "created": body["batches"][0]["created"],
            "path": "outputs/deck",
        }
    ]


def test_batch_detail_by_slug_or_id_with_images_in_order(api_as):
    client = api_as("viewer")
    batch = AlbumFactory(slug="tarot", source_type=Album.SourceType.BATCH_GENERATION)
    second = AlbumImageFactory(album=batch, image=ImageFactory(prompt="two"), position=2).image
    first = AlbumImageFactory(album=batch, image=ImageFactory(prompt="one"), position=1).image
    for key in ("tarot", str(batch.pk)):
        body = client.get(f"/api/batches/{key}").json()
        assert [image["id"] for image in body["images"]] == [first.pk, second.pk]
        assert body["images"][0]["filename"] == first.file.name.rsplit("/", 1)[-1]
        assert body["images"][0]["metadata"]["prompt"] == "one"
        assert body["images"][0]["url"].endswith(f"/api/images/{first.pk}/file")


def test_batch_detail_404s(api_as):
    client = api_as("viewer")
    scraped = AlbumFactory(source_type=Album.SourceType.SCRAPE)
    assert client.get(f"/api/batches/{scraped.pk}").status_code == 404
    assert client.get("/api/batches/nope").status_code == 404
    assert api_as(None).get("/api/batches").status_code == 401


@pytest.mark.parametrize("rows", [3, 30])
def test_batch_queries_are_constant(api_as, django_assert_num_queries, rows):
    client = api_as("viewer")
    batch = AlbumFactory(source_type=Album.SourceType.BATCH_GENERATION)
    for _ in range(rows):
        AlbumImageFactory(album=batch)
        AlbumFactory(source_type=Album.SourceType.BATCH_GENERATION)
    with django_assert_num_queries(4):
        client.get("/api/batches", {"page_size": 100})
    # session, user, album by slug, album by id, count, images
    with django_assert_num_queries(6):
        client.get(f"/api/batches/{batch.pk}", {"page_size": 100})
