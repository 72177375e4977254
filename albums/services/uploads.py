"""Images uploaded from a person's computer into an album (``source_type='upload'``).

Each file gets the scraper's checks: the same byte limit (IMAGINEER_SCRAPE_MAX_BYTES), a full
Pillow decode within the pixel limit (IMAGINEER_SCRAPE_MAX_PIXELS), and duplicates (the same
bytes, or a picture within the scraper's perceptual distance of one already in the album) are
skipped with a reason. A refused file never leaves a file or a row behind.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from albums.models import Album, Image
from albums.services.curation import album_add_images
from albums.services.files import media_path, sha256_file
from albums.services.net import FetchRefused
from albums.services.scrape_parse import FORMAT_EXTENSIONS, hamming, image_verify
from albums.services.scraping import NEAR_DUPLICATE_DISTANCE

UPLOAD_MAX_FILES = 100


@dataclass
class UploadResult:
    added: list[Image] = field(default_factory=list)
    # One sentence per refused file, naming it and saying why.
    skipped: list[str] = field(default_factory=list)


def album_upload_images(*, album: Album, files: list[Any], created_by: User) -> UploadResult:
    """Store each uploaded file as an Image in ``album``; refusals are reported, not raised."""
    result = UploadResult()
    known = list(Image.objects.filter(memberships__album=album).values_list("sha256", "perceptual_hash"))
    shas = {sha for sha, _ in known}
    hashes = [phash for _, phash in known if phash]
    incoming = media_path("incoming")
    incoming.mkdir(parents=True, exist_ok=True)
    limit = settings.IMAGINEER_SCRAPE_MAX_BYTES
    for upload in files[:UPLOAD_MAX_FILES]:
        name = Path(getattr(upload, "name", "") or "image").name[:200]
        if (getattr(upload, "size", 0) or 0) > limit:
            result.skipped.append(f"{name}: {upload.size:,} bytes is over the {limit:,}-byte limit.")
            continue
        fd, tmp_name = tempfile.mkstemp(dir=incoming, suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as sink:
                for chunk in upload.chunks():
                    sink.write(chunk)
            verified = image_verify(tmp, min_width=1, min_height=1)
            sha = sha256_file(tmp)
            if sha in shas:
                raise FetchRefused("duplicate", "the same image is already in the album")
            if any(hamming(known_hash, verified.perceptual_hash) <= NEAR_DUPLICATE_DISTANCE for known_hash in hashes):
                raise FetchRefused("near_duplicate", "it looks like an image already in the album")
            relative = f"uploads/{album.slug}/{sha[:16]}.{FORMAT_EXTENSIONS[verified.format]}"
            final = media_path(relative)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o644)
            os.replace(tmp, final)
            try:
                with transaction.atomic():
                    image = Image.objects.create(
                        file=relative,
                        width=verified.width,
                        height=verified.height,
                        file_size=final.stat().st_size,
                        sha256=sha,
                        perceptual_hash=verified.perceptual_hash,
                        title=Path(name).stem[:300],
                        created_by=created_by,
                    )
                    album_add_images(album=album, images=[image])
            except BaseException:
                with suppress(FileNotFoundError):
                    final.unlink()
                raise
        except FetchRefused as exc:
            result.skipped.append(f"{name}: {exc.message.replace('the download', 'the file')}.")
            continue
        finally:
            with suppress(FileNotFoundError):
                tmp.unlink()
        shas.add(sha)
        hashes.append(verified.perceptual_hash)
        result.added.append(image)
    if len(files) > UPLOAD_MAX_FILES:
        result.skipped.append(f"Only {UPLOAD_MAX_FILES} files are taken per upload; upload the rest again.")
    return result
