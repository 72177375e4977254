"""The LoRA library: register files under LORA_ROOT, upload, delete, detect the base.

Only ``.safetensors`` files are accepted (pickles can run code when loaded). The base
architecture, rank and alpha come from the tensor names and shapes in the file's header
(``generation.engine.lora_files``), read without torch.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from albums.services.files import sha256_file
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


def lora_detect(path: Path, *, name: str | None = None) -> tuple[str, int | None, float | None]:
    """(base, rank, alpha) of a LoRA file: base is sd15, sd2, sdxl or unknown; ``name`` names a temporary file."""
    try:
        info = lora_inspect(Path(path), name=name)
    except LoraFileError as exc:
        raise field_error("file", str(exc)) from None
    return info.base, info.rank, info.alpha


NAME_MAX = 200  # Lora.name
FILE_MAX = 500  # Lora.file


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
    relative = str(path.relative_to(root))
    if len(relative) > FILE_MAX:
        raise field_error("file", f"{path.name}: the path is {len(relative)} characters; the limit is {FILE_MAX}.")
    base, rank, alpha = lora_detect(path)
    sha256, a1111_hash = lora_file_hashes(path)
    existing = Lora.objects.filter(sha256=sha256).first()
    if existing is not None:
        raise field_error("file", f"{path.name} is already in the library as {existing.name!r} (same sha256).")
    if Lora.objects.filter(file=relative).exists():
        raise field_error("file", f"{relative} is already registered.")
    name = (name or path.stem).strip()
    if not name:
        raise field_error("name", "Give the LoRA a name.")
    if len(name) > NAME_MAX:
        raise field_error("name", f"The name is {len(name)} characters; the limit is {NAME_MAX}.")
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
    except IntegrityError:  # a unique column, taken between the checks above and the insert
        if Lora.objects.filter(name=name).exists():
            raise field_error(
                "name", f"A LoRA named {name!r} was added at the same time; choose another name."
            ) from None
        raise field_error("file", f"{path.name} was registered at the same time by someone else.") from None


def _unlink_unless_registered(path: Path) -> None:
    """Remove a file this call created, unless a library row has come to point at it meanwhile."""
    if not Lora.objects.filter(file=str(path.relative_to(lora_root()))).exists():
        with suppress(FileNotFoundError):
            path.unlink()


def lora_upload(*, uploaded_file: Any, name: str | None = None, created_by: User | None = None) -> Lora:
    """Store an uploaded .safetensors under LORA_ROOT/uploads/ and register it; nothing is left on error.

    The upload is written to a private temporary file and hashed as it is written, then given
    its final, content-addressed name (``<stem>-<sha256[:16]>.safetensors``) by ``os.link``,
    which fails rather than replace a file that exists: concurrent uploads never write over
    each other's files, and a refusal removes only the file it created, never one a row uses.
    """
    original = Path(getattr(uploaded_file, "name", "") or "lora.safetensors").name
    if not original.lower().endswith(".safetensors"):
        lora_detect(Path(original))  # refuses by the name alone, before anything is written
    size = getattr(uploaded_file, "size", 0) or 0
    if size > MAX_LORA_BYTES:
        raise field_error("file", f"{original} is {size / 1024**3:.1f} GiB; the limit is 2 GiB.")
    stem = slugify(Path(original).stem)[:100] or "lora"
    folder = lora_root() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as handle:
            for block in uploaded_file.chunks() if hasattr(uploaded_file, "chunks") else [uploaded_file.read()]:
                handle.write(block)
                digest.update(block)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)
        lora_detect(Path(tmp_name), name=original)  # a malformed file never gets a name in the folder
        sha256 = digest.hexdigest()
        target = folder / f"{stem}-{sha256[:16]}.safetensors"
        try:
            os.link(tmp_name, target)
        except FileExistsError:
            existing = Lora.objects.filter(sha256=sha256).first()
            if existing is not None:
                raise field_error(
                    "file", f"{original} is already in the library as {existing.name!r} (same sha256)."
                ) from None
            raise field_error(
                "file", f"The same file ({original}) is being uploaded by someone else right now."
            ) from None
    finally:
        with suppress(FileNotFoundError):
            os.unlink(tmp_name)
    default_name = re.sub(r"[_-]+", " ", Path(original).stem).strip()[:NAME_MAX].strip() or stem
    try:
        return lora_register(
            path=target,
            name=name or default_name,
            source=Lora.Source.UPLOAD,
            created_by=created_by,
        )
    except BaseException:
        _unlink_unless_registered(target)
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
    Library entries without an A1111 hash (registered before it was kept) get one, and entries
    still of Unknown base get the base their file now tells (text encoder width, metadata).
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
            _base_fill(relative, path)
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


def _base_fill(relative: str, path: Path) -> None:
    """An entry registered as Unknown before its base could be read (text-encoder or conv layers only)."""
    if Lora.objects.filter(file=relative, base=Lora.Base.UNKNOWN).exists():
        with suppress(LoraFileError, OSError):
            base = lora_inspect(path).base
            if base != Lora.Base.UNKNOWN:
                Lora.objects.filter(file=relative).update(base=base)


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
