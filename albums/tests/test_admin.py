from __future__ import annotations

import pytest
from django.urls import reverse

from albums.models import Image
from albums.services.files import image_thumbnail_path, media_path
from imagineer.tests.factories import AlbumFactory, AlbumImageFactory, ImageFactory, LabelFactory, ScrapeJobFactory

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "admin:albums_image_changelist"


def test_admin_pages_render_with_thumbnails(staff_client):
    membership = AlbumImageFactory()
    for url in [
        reverse(CHANGELIST),
        reverse("admin:albums_album_changelist"),
        reverse("admin:albums_album_change", args=[membership.album_id]),
        reverse("admin:albums_image_change", args=[membership.image_id]),
        reverse("admin:labeling_label_changelist"),
    ]:
        response = staff_client.get(url)
        assert response.status_code == 200, url
    body = staff_client.get(reverse(CHANGELIST)).content.decode()
    assert reverse("albums:image-thumbnail", args=[membership.image_id]) + "?size=128" in body


def test_search_by_prompt_and_by_label(staff_client):
    dragon = ImageFactory(prompt="a red dragon card")
    ImageFactory(prompt="a blue whale card")
    labelled = ImageFactory(prompt="untitled")
    LabelFactory(image=labelled, text="steampunk")
    LabelFactory(image=labelled, text="steampunk gears")

    def found(term):
        response = staff_client.get(reverse(CHANGELIST), {"q": term})
        return {image.pk for image in response.context["cl"].result_list}

    assert found("dragon") == {dragon.pk}
    assert found("steampunk") == {labelled.pk}


def test_filters_by_album_source_type_and_nsfw(staff_client):
    scraped = AlbumFactory(source_type="scrape")
    in_scrape = AlbumImageFactory(album=scraped).image
    nsfw = ImageFactory(is_nsfw=True, nsfw_rating="ADULT")

    def found(**params):
        response = staff_client.get(reverse(CHANGELIST), params)
        assert response.status_code == 200
        return {image.pk for image in response.context["cl"].result_list}

    assert found(album=scraped.pk) == {in_scrape.pk}
    assert found(source_type="scrape") == {in_scrape.pk}
    assert found(is_nsfw__exact=1) == {nsfw.pk}
    assert found(nsfw_rating__exact="ADULT") == {nsfw.pk}


def run_action(client, action, images, **extra):
    data = {"action": action, "_selected_action": [image.pk for image in images], **extra}
    return client.post(reverse(CHANGELIST), data, follow=True)


def test_mark_and_unmark_nsfw(staff_client):
    images = [ImageFactory(), ImageFactory()]
    run_action(staff_client, "mark_nsfw", images)
    assert Image.objects.filter(is_nsfw=True).count() == 2
    run_action(staff_client, "unmark_nsfw", images[:1])
    assert list(Image.objects.filter(is_nsfw=True)) == [images[1]]


def test_add_to_and_remove_from_album(staff_client):
    album = AlbumFactory()
    existing = AlbumImageFactory(album=album, position=1).image
    new = [ImageFactory(), ImageFactory()]
    response = run_action(staff_client, "add_to_album", [existing, *new], album=album.pk)
    assert "Added 2 image(s)" in response.content.decode()
    assert list(album.memberships.order_by("position").values_list("image_id", "position")) == [
        (existing.pk, 1),
        (new[0].pk, 2),
        (new[1].pk, 3),
    ]
    run_action(staff_client, "remove_from_album", [existing], album=album.pk)
    assert list(album.memberships.values_list("image_id", flat=True)) == [new[0].pk, new[1].pk]
    assert Image.objects.filter(pk=existing.pk).exists()


def test_album_action_without_album_says_what_to_do(staff_client):
    response = run_action(staff_client, "add_to_album", [ImageFactory()])
    assert "Choose an album" in response.content.decode()


def test_delete_with_files_removes_file_sidecar_and_thumbnail(staff_client):
    image = ImageFactory()
    original = media_path(image.file.name)
    sidecar = original.with_suffix(".json")
    sidecar.write_text("{}")
    thumbnail = image_thumbnail_path(image, 128)
    keep = ImageFactory()
    run_action(staff_client, "delete_with_files", [image])
    assert not Image.objects.filter(pk=image.pk).exists()
    assert not original.exists() and not sidecar.exists() and not thumbnail.exists()
    assert media_path(keep.file.name).exists()


def test_scrape_jobs_are_visible_in_the_admin(staff_client):
    job = ScrapeJobFactory()
    body = staff_client.get(reverse("admin:albums_scrapejob_changelist")).content.decode()
    assert f"/admin/albums/scrapejob/{job.pk}/change/" in body
    assert staff_client.get(reverse("admin:albums_scrapejob_change", args=[job.pk])).status_code == 200
    assert staff_client.get(reverse("admin:albums_scrapejob_add")).status_code == 403
