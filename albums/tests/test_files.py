from __future__ import annotations

import pytest
from django.urls import reverse
from PIL import Image as PILImage

from albums.services.files import atomic_write, image_thumbnail_path, media_path
from imagineer.tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


def test_media_path_refuses_escapes():
    with pytest.raises(ValueError):
        media_path("../../etc/passwd")
    with pytest.raises(ValueError):
        media_path("/etc/passwd")


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out" / "a.png"
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write(b"half")
        raise RuntimeError("disk full")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []
    with atomic_write(target) as handle:
        handle.write(b"whole")
    assert target.read_bytes() == b"whole"
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)


def test_thumbnail_keeps_aspect_ratio_and_is_cached():
    image = ImageFactory(width=300, height=600)
    path = image_thumbnail_path(image, 256)
    with PILImage.open(path) as thumb:
        assert thumb.size == (128, 256)
    mtime = path.stat().st_mtime_ns
    assert image_thumbnail_path(image, 200) == path
    assert path.stat().st_mtime_ns == mtime


def test_image_file_view_sets_etag_and_answers_304(client, user):
    image = ImageFactory()
    client.force_login(user)
    url = reverse("albums:image-file", args=[image.pk])
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["ETag"] == f'"{image.sha256}"'
    assert "Last-Modified" in response
    assert b"".join(response.streaming_content) == media_path(image.file.name).read_bytes()
    assert client.get(url, HTTP_IF_NONE_MATCH=f'"{image.sha256}"').status_code == 304


def test_thumbnail_view(client, user):
    image = ImageFactory()
    client.force_login(user)
    response = client.get(reverse("albums:image-thumbnail", args=[image.pk]), {"size": 128})
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"


def test_file_views_need_sign_in_and_existing_image(client, user):
    image = ImageFactory()
    assert client.get(reverse("albums:image-file", args=[image.pk])).status_code == 302
    client.force_login(user)
    assert client.get(reverse("albums:image-file", args=[image.pk + 999])).status_code == 404


def test_thumbnail_on_a_full_disk_answers_503_and_leaves_nothing(api_as, client, user, media_root):
    from imagineer.testing import full_filesystem

    image = ImageFactory(width=300, height=300)
    api = api_as("viewer")
    client.force_login(user)
    thumbs = media_root / "thumbs"
    with full_filesystem(thumbs) as filler:
        response = api.get(f"/api/images/{image.pk}/thumbnail", {"size": 128})
        assert response.status_code == 503
        assert response["Retry-After"]
        body = response.json()["error"]
        assert body["code"] == "disk_full" and "disk is full" in body["message"]
        page = client.get(reverse("albums:image-thumbnail", args=[image.pk]), {"size": 128})
        assert page.status_code == 503
        assert [p for p in thumbs.rglob("*") if p.is_file() and p != filler] == []  # no half-written .tmp
        filler.unlink()  # space is freed: the same request now works
        assert api.get(f"/api/images/{image.pk}/thumbnail", {"size": 128}).status_code == 200
