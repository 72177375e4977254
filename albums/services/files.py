"""Image files on disk: atomic writes, thumbnails, deletion.

A file is written under a temporary name in its final folder and renamed into place, so a
reader (or an Image row) never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from django.conf import settings
from PIL import Image as PILImage
from PIL import ImageOps

from albums.models import Image

THUMBNAIL_SIZES = (128, 256, 512)


def media_path(relative: str | None) -> Path:
    """The absolute path of a MEDIA_ROOT-relative name, refusing anything that escapes it (and
    an empty name: a file field that names no file)."""
    if not relative:
        raise ValueError("no file name")
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"{relative!r} is outside MEDIA_ROOT")
    return path


@contextmanager
def atomic_write(path: Path, mode: int = 0o644) -> Iterator[IO[bytes]]:
    """Write to a temporary file beside ``path``; rename into place only on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def thumbnail_size_normalize(size: int) -> int:
    """The smallest supported thumbnail size at least as large as asked (bounded work, bounded disk)."""
    return next((candidate for candidate in THUMBNAIL_SIZES if candidate >= size), THUMBNAIL_SIZES[-1])


def image_thumbnail_path(image: Image, size: int = 256) -> Path:
    """The path of the image's thumbnail (longest side ``size``), made once and cached on disk."""
    size = thumbnail_size_normalize(size)
    path = media_path(f"thumbs/{size}/{image.sha256[:2]}/{image.pk}-{image.sha256[:16]}.webp")
    if path.exists():
        return path
    with PILImage.open(media_path(image.file.name)) as source:
        thumb = ImageOps.exif_transpose(source)
        thumb = thumb.convert("RGBA" if thumb.mode in ("RGBA", "LA", "P") else "RGB")
        thumb.thumbnail((size, size), PILImage.Resampling.LANCZOS)
        with atomic_write(path) as handle:
            thumb.save(handle, format="WEBP", quality=82, method=4)
    return path


def image_files_delete(image: Image) -> None:
    """Remove an image's file, its JSON sidecar and its thumbnails from disk."""
    if image.file.name:
        original = media_path(image.file.name)
        for candidate in (original, original.with_suffix(".json")):
            with suppress(FileNotFoundError):
                candidate.unlink()
    for size in THUMBNAIL_SIZES:
        with suppress(FileNotFoundError, ValueError):
            media_path(f"thumbs/{size}/{image.sha256[:2]}/{image.pk}-{image.sha256[:16]}.webp").unlink()
