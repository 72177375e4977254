"""An album's files as one zip, streamed: memory stays at one read chunk, whatever the album's size."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import PurePosixPath

from albums.models import Album, AlbumImage
from albums.services.files import media_path
from generation.services.decks import title_file_stem

ZIP_CHUNK = 256 * 1024


class _ZipSink:
    """A write-only file for ZipFile whose bytes are handed out as the response streams."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._written = 0

    def write(self, data: bytes, /) -> int:
        self._chunks.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    def drain(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def album_zip_entries(*, album: Album, all_takes: bool = False) -> list[tuple[str, str]]:
    """(name in the zip, file under MEDIA_ROOT) per image, in album order: ``001-aries.png``.

    A deck gives its picks in slot order, named by card title (``01-ace-of-spades.png``), or
    with ``all_takes`` every take of every card (``01-ace-of-spades-2.png`` for the second).
    """
    from generation.deck_selectors import album_is_deck, deck_cards

    if album_is_deck(album=album):
        entries = []
        for card in deck_cards(album=album):
            stem = title_file_stem(card.slot.title) or f"card-{card.slot.index + 1}"
            prefix = f"{card.slot.index + 1:02d}-{stem}"
            images = card.images if all_takes else [card.pick] if card.pick is not None else []
            for number, image in enumerate(images, start=1):
                file_name = image.file.name or ""
                suffix = PurePosixPath(file_name).suffix.lower()
                entries.append((f"{prefix}-{number}{suffix}" if all_takes else f"{prefix}{suffix}", file_name))
        return entries
    entries = []
    rows = AlbumImage.objects.filter(album=album).order_by("position", "id").values_list("image__file", "image__title")
    for index, (name, title) in enumerate(rows, start=1):
        stem = (title_file_stem(title) if title else "") or PurePosixPath(name).stem
        entries.append((f"{index:03d}-{stem}{PurePosixPath(name).suffix.lower()}", name))
    return entries


def album_zip_stream(*, album: Album, all_takes: bool = False) -> Iterator[bytes]:
    """The album's zip, a chunk at a time; files missing on disk are left out.

    The album's images are read now (in the request), the files only as the response streams.
    """
    return _zip_stream(album_zip_entries(album=album, all_takes=all_takes))


def _zip_stream(entries: list[tuple[str, str]]) -> Iterator[bytes]:
    sink = _ZipSink()
    # Images are already compressed (PNG, WebP, JPEG): storing them is as small and far faster.
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for arcname, relative in entries:
            try:
                path = media_path(relative)
            except ValueError:
                continue
            if not path.is_file():
                continue
            with path.open("rb") as source, archive.open(arcname, mode="w") as target:
                for chunk in iter(lambda: source.read(ZIP_CHUNK), b""):
                    target.write(chunk)
                    yield sink.drain()
            yield sink.drain()
    yield sink.drain()
