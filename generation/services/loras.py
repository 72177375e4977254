"""The LoRA library: register files under LORA_ROOT, upload, delete, detect the base.

Only ``.safetensors`` files are accepted (pickles can run code when loaded). The base
architecture, rank and alpha come from the tensor names and shapes in the file's header
(``generation.engine.lora_files``), read without torch.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from albums.services.files import atomic_write, sha256_file
from generation.engine.lora_files import LoraFileError, lora_inspect
from generation.engine.lora_hash import lora_file_hashes
from generation.models import Lora
from imagineer.errors import ApplicationError, field_error

MAX_LORA_BYTES = 2 * 1024**3


def lora_root() -> Path:
    root = Path(settings.LORA_ROOT).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def lora_path(lora: Lora) -> Path:
    """The absolute path of a library entry's file, refusing anything outside LORA_ROOT."""
    root = Path(settings.LORA_ROOT).resolve()
    path = (root / lora.file).resolve()
    if not path.is_relative_to(root):
        raise ApplicationError(f"LoRA {lora.name!r} points outside the LoRA folder.")
    return path


def lora_detect(path: Path) -> tuple[str, int | None, float | None]:
    """(base, rank, alpha) of a LoRA file: base is sd15, sd2, sdxl or unknown."""
    try:
        info = lora_inspect(Path(path))
    except LoraFileError as exc:
        raise field_error("file", str(exc)) from None
    return info.base, info.rank, info.alpha


@transaction.atomic
def lora_register(
    *,
    path: Path,
    name: str | None = None,
    source: str = Lora.Source.SCAN,
    created_by: User | None = None,
    trigger_words: str = "",
) -> Lora:
    """Add a file that is already under LORA_ROOT to the library (nothing is copied or moved)."""
    root = lora_root()
    path = Path(path).resolve()
    if not path.is_relative_to(root):
        raise field_error("file", f"{path} is not under the LoRA folder {root}; put the file there first.")
    if not path.is_file():
        raise field_error("file", f"{path.name}: no such file.")
    base, rank, alpha = lora_detect(path)
    sha256, a1111_hash = lora_file_hashes(path)
    relative = str(path.relative_to(root))
    existing = Lora.objects.filter(sha256=sha256).first()
    if existing is not None:
        raise field_error("file", f"{path.name} is already in the library as {existing.name!r} (same sha256).")
    if Lora.objects.filter(file=relative).exists():
        raise field_error("file", f"{relative} is already registered.")
    name = (name or path.stem).strip()
    if not name:
        raise field_error("name", "Give the LoRA a name.")
    if Lora.objects.filter(name=name).exists():
        raise field_error("name", f"A LoRA named {name!r} already exists; choose another name.")
    try:
        with transaction.atomic():
            return Lora.objects.create(
                name=name,
                file=relative,
                sha256=sha256,
                a1111_hash=a1111_hash,
                file_size=path.stat().st_size,
                base=base,
                rank=rank,
                alpha=alpha,
                trigger_words=trigger_words,
                source=source,
                created_by=created_by,
            )
    except IntegrityError:
        raise field_error("file", f"{path.name} was registered at the same time by someone else.") from None


def lora_upload(*, uploaded_file: Any, name: str | None = None, created_by: User | None = None) -> Lora:
    """Store an uploaded .safetensors under LORA_ROOT/uploads/ and register it; nothing is left on error."""
    original = Path(getattr(uploaded_file, "name", "") or "lora.safetensors").name
    if not original.lower().endswith(".safetensors"):
        try:
            lora_inspect(Path(original))
        except LoraFileError as exc:
            raise field_error("file", str(exc)) from None
    size = getattr(uploaded_file, "size", 0) or 0
    if size > MAX_LORA_BYTES:
        raise field_error("file", f"{original} is {size / 1024**3:.1f} GiB; the limit is 2 GiB.")
    stem = slugify(Path(original).stem)[:120] or "lora"
    folder = lora_root() / "uploads"
    target = folder / f"{stem}.safetensors"
    counter = 2
    while target.exists():
        target = folder / f"{stem}-{counter}.safetensors"
        counter += 1
    with atomic_write(target) as handle:
        for block in uploaded_file.chunks() if hasattr(uploaded_file, "chunks") else [uploaded_file.read()]:
            handle.write(block)
    try:
        return lora_register(
            path=target,
            name=name or re.sub(r"[_-]+", " ", Path(original).stem).strip() or stem,
            source=Lora.Source.UPLOAD,
            created_by=created_by,
        )
    except BaseException:
        with suppress(FileNotFoundError):
            target.unlink()
        raise


@dataclass
class ScanResult:
    registered: list[Lora] = field(default_factory=list)
    # Files already in the library (same content): nothing wrong with them.
    skipped: list[str] = field(default_factory=list)
    # Files that cannot be registered (pickles, not safetensors, not a LoRA), each with why.
    broken: list[str] = field(default_factory=list)


def lora_scan(*, directory: Path | None = None, progress: Callable[[int, int], None] | None = None) -> ScanResult:
    """Register every unregistered .safetensors under ``directory`` (default LORA_ROOT).

    A bad file is reported and skipped, not fatal; ``progress(done, total)`` follows the files.
    Library entries without an A1111 hash (registered before it was kept) get one.
    """
    root = lora_root()
    directory = Path(directory or root).resolve()
    known_files = set(Lora.objects.values_list("file", flat=True))
    known_hashes = set(Lora.objects.values_list("sha256", flat=True))
    result = ScanResult()
    paths = [path for path in sorted(directory.rglob("*")) if path.is_file() and not path.name.startswith(".")]
    for done, path in enumerate(paths, start=1):
        if progress is not None:
            progress(done - 1, len(paths))
        if path.suffix.lower() != ".safetensors":
            if path.suffix.lower() in {".ckpt", ".pt", ".pth", ".bin", ".pkl"}:
                result.broken.append(f"{path.name}: pickle files are refused (convert to .safetensors).")
            continue
        relative = str(path.relative_to(root)) if path.is_relative_to(root) else None
        if relative in known_files:
            _a1111_hash_fill(relative, path)
            continue
        if sha256_file(path) in known_hashes:
            result.skipped.append(f"{path.name}: the same file is already registered.")
            continue
        name, counter = path.stem, 2
        while Lora.objects.filter(name=name).exists():
            name = f"{path.stem}-{counter}"
            counter += 1
        try:
            result.registered.append(lora_register(path=path, name=name, source=Lora.Source.SCAN))
        except ApplicationError as exc:
            result.broken.append(f"{path.name}: {exc.message}")
    if progress is not None:
        progress(len(paths), len(paths))
    return result


def _a1111_hash_fill(relative: str, path: Path) -> None:
    if Lora.objects.filter(file=relative, a1111_hash="").exists():
        Lora.objects.filter(file=relative).update(a1111_hash=lora_file_hashes(path)[1])


@transaction.atomic
def lora_delete(*, lora: Lora) -> None:
    """Delete a library entry and its file; refused while a template's stack uses it."""
    templates = list(lora.templates.values_list("name", flat=True)[:5])
    if templates:
        raise ApplicationError(
            f"LoRA {lora.name!r} is used by template{'s' if len(templates) > 1 else ''} {', '.join(templates)}; "
            "remove it from those templates first.",
            code="in_use",
        )
    path = lora_path(lora)
    lora.delete()

    def unlink() -> None:
        with suppress(FileNotFoundError):
            path.unlink()

    transaction.on_commit(unlink)
