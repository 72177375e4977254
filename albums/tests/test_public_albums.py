"""IMAGINEER_PUBLIC_ALBUMS: anonymous visitors browse public albums (pages and API); nothing else.

Off (the default), anonymous visitors are sent to sign in (pages) or refused (API). On, they see
public albums and the images in them; a private album or image answers 404, not 403, so its
existence does not leak. Signed-in users see everything either way.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from albums.models import Album, Image
from imagineer.tests.factories import AlbumFactory, AlbumImageFactory, ImageFactory, UserFactory

pytestmark = pytest.mark.django_db


def album_with_image(name: str, *, is_public: bool) -> tuple[Album, Image]:
    # A batch album, so the legacy /api/batches/<id> serves it too.
    album = AlbumFactory.create(name=name, is_public=is_public, source_type=Album.SourceType.BATCH_GENERATION)
    image = ImageFactory.create(title=f"{name} image", prompt=f"{name} prompt")
    AlbumImageFactory(album=album, image=image, position=0)
    return album, image


@pytest.fixture
def albums() -> dict[str, tuple[Album, Image]]:
    return {
        "public": album_with_image("Sunlit harbour", is_public=True),
        "private": album_with_image("Secret garden", is_public=False),
    }


def page_urls(album: Album, image: Image) -> list[str]:
    return [
        reverse("albums:album-detail", args=[album.pk]),
        reverse("albums:album-image", args=[album.pk, image.pk]),
        reverse("albums:album-download", args=[album.pk]),
        reverse("albums:image-file", args=[image.pk]),
        reverse("albums:image-thumbnail", args=[image.pk]) + "?size=64",
    ]


def api_urls(album: Album, image: Image) -> list[str]:
    return [
        f"/api/albums/{album.pk}",
        f"/api/images/{image.pk}",
        f"/api/images/{image.pk}/file",
        f"/api/images/{image.pk}/thumbnail?size=64",
        f"/api/batches/{album.pk}",
    ]


# --- setting off (the default): nothing changes ----------------------------------------------


def test_off_anonymous_pages_redirect_to_sign_in(client, settings, albums):
    settings.IMAGINEER_PUBLIC_ALBUMS = False
    album, image = albums["public"]
    for url in [
        reverse("albums:album-list"),
        reverse("albums:image-detail", args=[image.pk]),
        *page_urls(album, image),
    ]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/accounts/login/" in response["Location"], url


def test_off_anonymous_api_is_refused(api_as, settings, albums):
    settings.IMAGINEER_PUBLIC_ALBUMS = False
    client = api_as(None)
    album, image = albums["public"]
    for url in ["/api/albums", "/api/images", "/api/batches", *api_urls(album, image)]:
        assert client.get(url).status_code in (401, 403), url


# --- setting on: anonymous visitors see public albums only -----------------------------------


def test_on_anonymous_album_list_shows_public_albums_only(client, settings, albums):
    settings.IMAGINEER_PUBLIC_ALBUMS = True
    response = client.get(reverse("albums:album-list"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Sunlit harbour" in body
    assert "Secret garden" not in body
    # Signed-out header: Albums link and sign-in, no role-only links.
    assert "Sign in" in body and reverse("generation:generate") not in body


def test_on_anonymous_sees_public_album_pages_and_files(client, settings, albums):
    settings.IMAGINEER_PUBLIC_ALBUMS = True
    album, image = albums["public"]
    for url in page_urls(album, image):
        response = client.get(url)
        assert response.status_code == 200, url
    detail = client.get(reverse("albums:album-detail", args=[album.pk])).content.decode()
    assert "Sunlit harbour" in detail
    assert "Label (offline labeler)" not in detail and "Train a LoRA" not in detail
    # The pager between albums must not name a private one.
    assert "Secret garden" not in detail
    image_page = client.get(reverse("albums:album-image", args=[album.pk, image.pk])).content.decode()
    assert "Label (offline labeler)" not in image_page and "Generate again" not in image_page
    assert client.get(reverse("albums:image-file", args=[image.pk]))["Content-Type"] == "image/png"
    assert client.get(reverse("albums:image-thumbnail", args=[image.pk]))["Content-Type"] == "image/webp"
    assert client.get(reverse("albums:image-detail", args=[image.pk]))["Location"] == reverse(
        "albums:album-image", args=[album.pk, image.pk]
    )


def test_on_anonymous_gets_404_for_private_albums_and_images(client, settings, albums):
    settings.IMAGINEER_PUBLIC_ALBUMS = True
    album, image = albums["private"]
    loose = ImageFactory()  # in no album at all
    urls = [
        *page_urls(album, image),
        reverse("albums:image-detail", args=[image.pk]),
        reverse("albums:image-detail", args=[loose.pk]),
        reverse("albums:image-file", args=[loose.pk]),
    ]
    for url in urls:
        assert client.get(url).status_code == 404, url
    # A private album's image stays private even addressed through a public album's URL.
    public_album, _ = albums["public"]
    assert client.get(reverse("albums:album-image", args=[public_album.pk, image.pk])).status_code == 404


def test_on_anonymous_cannot_post_or_reach_other_pages(client, settings, albums):
    settings.IMAGINEER_PUBLIC_ALBUMS = True
    album, _ = albums["public"]
    response = client.post(reverse("albums:album-label", args=[album.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    response = client.get(reverse("generation:template-list"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_on_anonymous_api_reads_public_albums_only(api_as, settings, albums):
    settings.IMAGINEER_PUBLIC_ALBUMS = True
    client = api_as(None)
    public_album, public_image = albums["public"]
    private_album, private_image = albums["private"]
    assert [row["id"] for row in client.get("/api/albums").json()["results"]] == [public_album.pk]
    assert [row["id"] for row in client.get("/api/images").json()["results"]] == [public_image.pk]
    for url in api_urls(public_album, public_image):
        assert client.get(url).status_code == 200, url
    for url in api_urls(private_album, private_image):
        assert client.get(url).status_code == 404, url
    # An image in both a public and a private album does not reveal the private one.
    AlbumImageFactory(album=private_album, image=public_image, position=1)
    assert client.get(f"/api/images/{public_image.pk}").json()["album_ids"] == [public_album.pk]
    # Reads only: writes still need sign-in.
    assert client.post("/api/albums", {"name": "x"}).status_code in (401, 403, 405)


def test_on_signed_in_viewer_sees_everything_as_before(client, api_as, settings, albums):
    settings.IMAGINEER_PUBLIC_ALBUMS = True
    client.force_login(UserFactory(role="viewer"))
    body = client.get(reverse("albums:album-list")).content.decode()
    assert "Sunlit harbour" in body and "Secret garden" in body
    loose = ImageFactory()
    for key in ("public", "private"):
        for url in page_urls(*albums[key]):
            assert client.get(url).status_code == 200, url
    assert client.get(reverse("albums:image-detail", args=[loose.pk])).status_code == 200
    api = api_as("viewer")
    assert {row["id"] for row in api.get("/api/albums").json()["results"]} == {a.pk for a, _ in albums.values()}
    assert api.get(f"/api/images/{loose.pk}/file").status_code == 200
    for url in api_urls(*albums["private"]):
        assert api.get(url).status_code == 200, url


# --- the header's Admin link -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "is_staff", "is_superuser", "shown"),
    [
        ("creator", True, False, False),  # made staff by hand: still no admin
        ("curator", True, False, True),
        ("curator", False, False, False),
        ("viewer", True, True, True),
    ],
)
def test_admin_link_only_for_curators_and_superusers(client, role, is_staff, is_superuser, shown):
    user = UserFactory(role=role)
    # Set after the role, which sets is_staff itself.
    type(user).objects.filter(pk=user.pk).update(is_staff=is_staff, is_superuser=is_superuser)
    user.refresh_from_db()
    client.force_login(user)
    body = client.get(reverse("albums:album-list")).content.decode()
    assert (f'href="{reverse("admin:index")}"' in body) is shown


def test_on_anonymous_image_filter_by_a_private_album_answers_like_a_missing_album(api_as, settings, albums):
    """Issue 12.10: ``?album=<private id>`` must not count the public images that are also in it."""
    settings.IMAGINEER_PUBLIC_ALBUMS = True
    public_album, public_image = albums["public"]
    private_album, _private_image = albums["private"]
    AlbumImageFactory(album=private_album, image=public_image, position=1)
    anonymous = api_as(None)
    missing = anonymous.get("/api/images", {"album": 999999})
    private = anonymous.get("/api/images", {"album": private_album.pk})
    assert (private.status_code, private.json()) == (missing.status_code, missing.json())
    assert private.json()["count"] == 0
    assert anonymous.get("/api/images", {"album": public_album.pk}).json()["count"] == 1
    # Signed in, the same filter sees both of the private album's images.
    assert api_as("viewer").get("/api/images", {"album": private_album.pk}).json()["count"] == 2
