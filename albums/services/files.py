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


# --- what a crash leaves behind ------------------------------------------------------------
# A worker killed between writing and renaming leaves a temporary file; one killed between the
# PNG and its database row leaves an image no row points at (its sidecar beside it); a sidecar
# with no PNG is left by a full disk. Only files older than ``older_than`` seconds are removed:
# a younger one may belong to a write in progress (writes take well under a second; the
# default bound, IMAGINEER_TMP_STALE_SECONDS, is an hour).

TEMPORARY_PATTERNS = (".*.tmp", "*.part")
GENERATED_FOLDER = "outputs"


def _stale(path: Path, cutoff: float) -> bool:
    try:
        return path.is_file() and path.stat().st_mtime < cutoff
    except FileNotFoundError:
        return False


def _unlink(path: Path) -> int:
    try:
        path.unlink()
    except FileNotFoundError:  # another sweeper got there first
        return 0
    return 1


def media_sweep(*, older_than: float, now: float | None = None) -> dict[str, int]:
    """Remove stale temporary files, generated images no Image row points at, and sidecars
    without their image. Safe to run in several processes at once. Returns counts removed."""
    import time

    root = Path(settings.MEDIA_ROOT)
    cutoff = (now if now is not None else time.time()) - older_than
    removed = {"temporary": 0, "orphan_images": 0, "orphan_sidecars": 0}
    if not root.is_dir():
        return removed
    for pattern in TEMPORARY_PATTERNS:
        for path in root.rglob(pattern):
            if _stale(path, cutoff):
                removed["temporary"] += _unlink(path)
    outputs = root / GENERATED_FOLDER
    if not outputs.is_dir():
        return removed
    for folder in [outputs, *(p for p in outputs.rglob("*") if p.is_dir())]:
        pngs = [p for p in folder.glob("*.png") if _stale(p, cutoff)]
        names = {p.relative_to(root).as_posix(): p for p in pngs}
        known = set(Image.objects.filter(file__in=list(names)).values_list("file", flat=True))
        for name, path in names.items():
            if name not in known:
                removed["orphan_images"] += _unlink(path)
        for sidecar in folder.glob("*.json"):
            if _stale(sidecar, cutoff) and not sidecar.with_suffix(".png").exists():
                removed["orphan_sidecars"] += _unlink(sidecar)
    return removed
