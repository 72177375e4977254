"""Rows and images for the layout guide tests."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image as PILImage

ROWS = [
    {"value": "Ace", "suit": "Spades", "layout": "big"},
    {"value": "7", "suit": "Hearts", "layout": "small"},
]


def png(size: tuple[int, int] = (32, 48), colour: str = "red") -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")
