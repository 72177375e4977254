"""What scraped pages and downloads contain: image candidates and links in HTML, and images
verified by decoding them."""

from __future__ import annotations

import warnings
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, Tag
from django.conf import settings
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from albums.services.net import FetchRefused

FORMAT_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "AVIF": "avif"}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".avif")
OG_IMAGE_PROPERTIES = ("og:image", "og:image:url", "og:image:secure_url")


@dataclass(frozen=True)
class ImageCandidate:
    url: str
    page_url: str
    alt: str = ""


def srcset_largest(value: str) -> str:
    """The URL of the largest candidate in a srcset ("a.jpg 480w, b.jpg 1200w" -> "b.jpg").

    Width descriptors outrank density ones; a candidate without a descriptor is 1x. URLs may
    contain commas, so this follows the HTML spec's tokenising rather than splitting on ",".
    """
    best_url, best_key = "", (-1, -1.0)
    pos, end = 0, len(value)
    while pos < end:
        while pos < end and (value[pos].isspace() or value[pos] == ","):
            pos += 1
        start = pos
        while pos < end and not value[pos].isspace():
            pos += 1
        url, descriptor = value[start:pos], ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            start = pos
            depth = 0
            while pos < end and (value[pos] != "," or depth):
                depth += {"(": 1, ")": -1}.get(value[pos], 0)
                pos += 1
            descriptor = value[start:pos].strip().lower()
        if not url:
            continue
        key = (0, 1.0)
        with suppress(ValueError):
            if descriptor.endswith("w"):
                key = (1, float(descriptor[:-1]))
            elif descriptor.endswith("x"):
                key = (0, float(descriptor[:-1]))
        if key > best_key:
            best_url, best_key = url, key
    return best_url


def _attr(tag: object, name: str) -> str:
    """A tag's attribute as text: '' when absent (or no tag), a multi-valued one joined by spaces."""
    value = tag.get(name) if isinstance(tag, Tag) else None
    if value is None:
        return ""
    return value if isinstance(value, str) else " ".join(value)


def _http_url(base: str, reference: str) -> str | None:
    reference = (reference or "").strip()
    if not reference or reference.startswith(("data:", "javascript:", "mailto:", "#")):
        return None
    url = urljoin(base, reference).split("#", 1)[0]
    return url if urlsplit(url).scheme in ("http", "https") else None


def page_extract(
    html: bytes | str, *, page_url: str, encoding: str | None = None
) -> tuple[list[ImageCandidate], list[str]]:
    """Image candidates and followable links of an HTML page, in document order, without repeats.

    Images: ``<img>`` (largest ``srcset`` candidate, else ``src``), ``<picture>`` (one image:
    the largest candidate over its ``<source>``s and its ``<img>``), ``og:image`` and links to
    image files. Links: every other ``<a href>``.
    """
    soup = BeautifulSoup(html, "html.parser", from_encoding=encoding if isinstance(html, bytes) else None)
    base_tag = soup.find("base", href=True)
    base = urljoin(page_url, _attr(base_tag, "href")) if base_tag else page_url
    images: dict[str, ImageCandidate] = {}
    links: dict[str, None] = {}

    def add_image(reference: str, alt: str) -> None:
        url = _http_url(base, reference)
        if url and url not in images:
            images[url] = ImageCandidate(url=url, page_url=page_url, alt=" ".join(alt.split())[:1000])

    for meta in soup.find_all("meta"):
        if (_attr(meta, "property") or _attr(meta, "name")).lower() in OG_IMAGE_PROPERTIES and _attr(meta, "content"):
            add_image(_attr(meta, "content"), "")
    in_pictures = set()
    for picture in soup.find_all("picture"):
        fallback = picture.find("img")
        alt = _attr(fallback, "alt")
        srcsets = [_attr(source, "srcset") for source in picture.find_all("source")]
        if fallback is not None:
            in_pictures.add(id(fallback))
            srcsets.append(_attr(fallback, "srcset") or _attr(fallback, "src"))
        joined = ", ".join(srcset for srcset in srcsets if srcset.strip())
        if joined:
            add_image(srcset_largest(joined), alt)
    for img in soup.find_all("img"):
        if id(img) in in_pictures:
            continue
        reference = srcset_largest(_attr(img, "srcset")) or _attr(img, "src")
        add_image(reference, _attr(img, "alt"))
    for anchor in soup.find_all("a", href=True):
        url = _http_url(base, _attr(anchor, "href"))
        if url is None:
            continue
        if urlsplit(url).path.lower().endswith(IMAGE_EXTENSIONS):
            inner = anchor.find("img")
            add_image(url, _attr(inner, "alt") or anchor.get_text(" ", strip=True))
        else:
            links.setdefault(url, None)
    return list(images.values()), list(links)


def site_of(url: str) -> str:
    """The host a "same site" crawl stays on; ``www.`` is the same site as the bare name."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return host.removeprefix("www.")


@dataclass(frozen=True)
class VerifiedImage:
    format: str
    width: int
    height: int
    perceptual_hash: str


def image_verify(path: Path, *, min_width: int, min_height: int) -> VerifiedImage:
    """Decode the file fully with Pillow (within the pixel limit) and hash what it shows.

    Raises FetchRefused: ``not_an_image``, ``decompression_bomb``, ``too_small``.
    """
    import imagehash

    max_pixels = settings.IMAGINEER_SCRAPE_MAX_PIXELS
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that: refuse there too.
        warnings.simplefilter("error", PILImage.DecompressionBombWarning)
        try:
            with PILImage.open(path, formats=list(FORMAT_EXTENSIONS)) as picture:
                width, height = picture.size
                if width * height > max_pixels:
                    raise FetchRefused(
                        "decompression_bomb",
                        f"{width}x{height} is {width * height:,} pixels, over the {max_pixels:,}-pixel limit",
                    )
                if width < min_width or height < min_height:
                    raise FetchRefused("too_small", f"{width}x{height} is smaller than {min_width}x{min_height}")
                picture.load()
                return VerifiedImage(
                    format=picture.format or "",
                    width=width,
                    height=height,
                    perceptual_hash=str(imagehash.phash(picture)),
                )
        except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
            raise FetchRefused("decompression_bomb", f"refused as a decompression bomb: {exc}") from None
        except UnidentifiedImageError:
            raise FetchRefused("not_an_image", "not a readable image: Pillow does not recognise its format") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            # Pillow's messages may name the temporary file; say what, not where.
            detail = str(exc).replace(str(path), "the download")
            raise FetchRefused("not_an_image", f"not a readable image: {detail}") from None


def hamming(first: str, second: str) -> int:
    return (int(first, 16) ^ int(second, 16)).bit_count()
