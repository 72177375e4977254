"""Batch templates: CSV parsing, placeholder checks, prompt construction, save.

Every prompt in Imagineer is built by ``prompt_construct``:

    [base_prompt] [user theme] [row via prompt_template] [style_suffix]

Empty parts are skipped and separators normalised, so a template author never has to think
about stray commas.
"""

from __future__ import annotations

import csv
import io
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils.text import slugify

from generation.models import (
    LORA_WEIGHT_MAX,
    LORA_WEIGHT_MIN,
    SIZE_MAX,
    SIZE_MIN,
    BatchTemplate,
    BatchTemplateLora,
    Lora,
)
from generation.services.prompt_loras import prompt_loras_resolve
from imagineer.errors import ApplicationError, field_error

_formatter = string.Formatter()
_SEPARATOR_RUN = re.compile(r"\s*(?:,\s*)+")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class ParsedCsv:
    columns: list[str]
    rows: list[dict[str, str]]


def csv_parse(data: bytes | str, *, field: str = "csv_file", max_rows: int | None = None) -> ParsedCsv:
    """Parse an uploaded CSV into its header and rows.

    Accepts UTF-8 with or without a BOM and quoted fields holding commas and newlines.
    Every refusal names the line and column so the author can fix the file.
    """
    max_rows = max_rows or settings.IMAGINEER_MAX_TEMPLATE_ROWS
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise field_error(
                field,
                f"The CSV is not UTF-8 (bad byte at position {exc.start}). Save it as 'CSV UTF-8' and upload it again.",
            ) from None
    else:
        text = data.removeprefix("\ufeff")
    if not text.strip():
        raise field_error(field, "The CSV is empty: it needs a header line and at least one row.")
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise field_error(
            field,
            f"The CSV contains a NUL character (\\x00) on line {line}; a text CSV never does. "
            "Save the file as 'CSV UTF-8' and upload it again.",
        )

    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise field_error(field, f"The CSV header could not be read: {exc}.") from None
    columns = [name.strip() for name in header]
    if not any(columns):
        raise field_error(field, "The CSV header line is empty: the first line must name the columns.")
    for position, name in enumerate(columns, start=1):
        if not name:
            raise field_error(field, f"Column {position} of the header has no name; every column needs one.")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise field_error(
                field,
                f"Column name {name!r} cannot be used as a {{placeholder}}: use letters, digits and underscores, "
                "starting with a letter.",
            )
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise field_error(field, f"Column {name!r} appears twice in the header; column names must be unique.")
        seen.add(name)

    rows: list[dict[str, str]] = []
    try:
        for values in reader:
            if not values or all(not value.strip() for value in values):
                continue
            line = reader.line_num
            if len(values) != len(columns):
                raise field_error(
                    field,
                    f"Row {len(rows) + 1} (line {line}) has {len(values)} fields but the header has {len(columns)} "
                    f"({', '.join(columns)}). Quote values that contain commas.",
                )
            rows.append({name: value.strip() for name, value in zip(columns, values, strict=True)})
            if len(rows) > max_rows:
                raise field_error(
                    field,
                    f"The CSV has more than {max_rows:,} rows, the most a template may hold "
                    "(IMAGINEER_MAX_TEMPLATE_ROWS); split it into smaller templates.",
                )
    except csv.Error as exc:
        raise field_error(field, f"The CSV is malformed near line {reader.line_num}: {exc}.") from None
    if not rows:
        raise field_error(field, "The CSV has a header but no rows; add at least one row.")
    return ParsedCsv(columns=columns, rows=rows)


def csv_render(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """The rows as CSV text (header first), for editing in a textarea or exporting."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(name, "") for name in columns])
    return buffer.getvalue()


def template_placeholders(prompt_template: str, *, field: str = "prompt_template") -> list[str]:
    """The {column} names a prompt template uses, in order of first use.

    ``{{`` and ``}}`` are literal braces. Positional ``{}``, attribute or index access and
    format specs are refused: a template only substitutes column values.
    """
    names: list[str] = []
    try:
        parsed = list(_formatter.parse(prompt_template))
    except ValueError as exc:
        raise field_error(
            field, f"The prompt template has unbalanced braces ({exc}); write {{{{ or }}}} for a literal brace."
        ) from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name == "" or name.isdigit():
            raise field_error(field, "The prompt template has an empty {} placeholder; name a column, e.g. {suit}.")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise field_error(field, f"Placeholder {{{name}}} is not a plain column name; use {{column}} only.")
        if spec or conversion:
            raise field_error(field, f"Placeholder {{{name}}} has a format spec or conversion; use {{{name}}} alone.")
        if name not in names:
            names.append(name)
    return names


def _clean_part(text: str) -> str:
    text = _SPACES.sub(" ", text or "").strip()
    return text.strip(", ").strip()


def prompt_render_row(prompt_template: str, row: Mapping[str, Any]) -> str:
    """Substitute a row's values into the template (placeholders already validated)."""
    return prompt_template.format_map({key: "" if value is None else str(value) for key, value in row.items()})


def prompt_construct(*, base_prompt: str = "", theme: str = "", row_text: str = "", style_suffix: str = "") -> str:
    """The one prompt builder: ``[base] [theme] [row] [style]``, empty parts skipped.

    Parts are joined with ", "; repeated commas and whitespace inside and between parts are
    folded so that "a,, b ," and an empty theme never leave stray separators.
    """
    parts = [_clean_part(part) for part in (base_prompt, theme, row_text, style_suffix)]
    joined = ", ".join(part for part in parts if part)
    return _SEPARATOR_RUN.sub(", ", joined).strip(", ").strip()


def template_row_prompt(
    *,
    base_prompt: str,
    prompt_template: str,
    style_suffix: str,
    theme: str,
    row: Mapping[str, Any],
) -> str:
    return prompt_construct(
        base_prompt=base_prompt,
        theme=theme,
        row_text=prompt_render_row(prompt_template, row),
        style_suffix=style_suffix,
    )


def _row_label(index: int, row: Mapping[str, Any], columns: Sequence[str]) -> str:
    first = next((f"{name}={row.get(name)!s:.40}" for name in columns if row.get(name)), "")
    return f"Row {index + 1}" + (f" ({first})" if first else "")


def template_validate(
    *,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    base_prompt: str,
    prompt_template: str,
    style_suffix: str,
    example_theme: str = "",
    theme: str | None = None,
) -> None:
    """Check a template before it is saved (or a run before it starts).

    Unknown placeholders, missing columns, empty rows and over-long prompts are errors here,
    not at run time. ``theme`` defaults to the example theme.
    """
    if not prompt_template or not prompt_template.strip():
        raise field_error(
            "prompt_template", "The prompt template is empty; write the row text with {column} placeholders."
        )
    placeholders = template_placeholders(prompt_template)
    if not rows:
        raise field_error("csv_file", "The template has no rows; upload a CSV with a header and at least one row.")
    if len(rows) > settings.IMAGINEER_MAX_TEMPLATE_ROWS:
        raise field_error(
            "csv_file",
            f"The template has {len(rows):,} rows; a template may hold at most {settings.IMAGINEER_MAX_TEMPLATE_ROWS:,} "
            "(IMAGINEER_MAX_TEMPLATE_ROWS). Split it into smaller templates.",
        )
    unknown = [name for name in placeholders if name not in columns]
    if unknown:
        listed = ", ".join(f"{{{name}}}" for name in unknown)
        raise field_error(
            "prompt_template",
            f"Unknown placeholder{'s' if len(unknown) > 1 else ''} {listed}: the CSV columns are {', '.join(columns)}.",
        )
    limit = settings.IMAGINEER_MAX_PROMPT_CHARS
    theme_field = "example_theme" if theme is None else "theme"
    theme = example_theme if theme is None else theme
    texts = [base_prompt, prompt_template, style_suffix, theme, *(str(value) for row in rows for value in row.values())]
    # Tags are resolved against the library once, and only when some text may hold one.
    library = list(Lora.objects.order_by("pk")) if any("<" in (text or "") for text in texts) else []
    for index, row in enumerate(rows):
        missing = [name for name in placeholders if name not in row]
        if missing:
            raise field_error("csv_file", f"{_row_label(index, row, columns)} has no column {missing[0]!r}.")
        prompt = template_row_prompt(
            base_prompt=base_prompt, prompt_template=prompt_template, style_suffix=style_suffix, theme=theme, row=row
        )
        try:
            prompt_loras_resolve(
                [
                    ("base_prompt", base_prompt),
                    (theme_field, theme),
                    ("prompt_template", prompt_render_row(prompt_template, row)),
                    ("style_suffix", style_suffix),
                ],
                library=library,
            )
        except ApplicationError as exc:
            if "prompt_template" not in exc.fields:
                raise
            message = f"{_row_label(index, row, columns)}: {exc.message}"
            raise ApplicationError(message, fields={"prompt_template": [message]}, code=exc.code) from None
        if len(prompt) > limit:
            raise ApplicationError(
                f"{_row_label(index, row, columns)}: the constructed prompt is {len(prompt):,} characters; the limit is "
                f"{limit:,}. Shorten the row, the base prompt, the style suffix or the theme.",
                fields={
                    "prompt_template": [
                        f"{_row_label(index, row, columns)}: prompt is {len(prompt):,} characters (limit {limit:,})."
                    ]
                },
            )


def size_validate(*, width: int, height: int) -> None:
    errors: dict[str, list[str]] = {}
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or isinstance(value, bool):
            errors[name] = [f"{name.title()} must be a whole number of pixels."]
        elif not SIZE_MIN <= value <= SIZE_MAX:
            errors[name] = [f"{name.title()} must be between {SIZE_MIN} and {SIZE_MAX} pixels; got {value}."]
        elif value % 8:
            errors[name] = [
                f"{name.title()} {value} is not a multiple of 8; use {value - value % 8} or {value - value % 8 + 8}."
            ]
    if errors:
        first = next(iter(errors.values()))[0]
        raise ApplicationError(first, fields=errors)


@dataclass(frozen=True)
class LoraStackEntry:
    lora: Lora
    weight: Decimal


def lora_weight_parse(value: Any, *, field: str = "loras") -> Decimal:
    try:
        weight = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise field_error(field, f"LoRA weight {value!r} is not a number.") from None
    if not weight.is_finite() or not LORA_WEIGHT_MIN <= weight <= LORA_WEIGHT_MAX:
        raise field_error(field, f"LoRA weight {value} is outside {LORA_WEIGHT_MIN}..{LORA_WEIGHT_MAX}.")
    return weight.quantize(Decimal("0.01"))


@transaction.atomic
def template_save(
    *,
    name: str,
    prompt_template: str,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    description: str = "",
    base_prompt: str = "",
    style_suffix: str = "",
    negative_prompt: str = "",
    example_theme: str = "",
    title_template: str = "",
    width: int = 512,
    height: int = 512,
    steps: int = 25,
    guidance_scale: float = 8.0,
    lora_stack: Sequence[LoraStackEntry] = (),
    slug: str | None = None,
    is_builtin: bool = False,
    created_by: User | None = None,
    instance: BatchTemplate | None = None,
) -> BatchTemplate:
    """Create or update a template after validating everything; nothing is saved on error."""
    if not name or not name.strip():
        raise field_error("name", "Give the template a name.")
    size_validate(width=width, height=height)
    template_validate(
        columns=columns,
        rows=rows,
        base_prompt=base_prompt,
        prompt_template=prompt_template,
        style_suffix=style_suffix,
        example_theme=example_theme,
    )
    from generation.services.decks import title_template_validate

    title_template_validate(title_template, columns)
    template = instance or BatchTemplate(created_by=created_by)
    template.name = name.strip()
    template.title_template = title_template.strip()
    template.slug = slug or template.slug or slugify(name)[:200]
    template.description = description
    template.columns = list(columns)
    template.csv_data = [dict(row) for row in rows]
    template.base_prompt = base_prompt
    template.prompt_template = prompt_template
    template.style_suffix = style_suffix
    template.negative_prompt = negative_prompt
    template.example_theme = example_theme
    template.width, template.height = width, height
    template.steps, template.guidance_scale = steps, guidance_scale
    template.is_builtin = is_builtin
    template.full_clean(exclude=["columns", "csv_data"])
    template.save()
    template.lora_stack.all().delete()
    BatchTemplateLora.objects.bulk_create(
        BatchTemplateLora(template=template, lora=entry.lora, weight=entry.weight, position=position)
        for position, entry in enumerate(lora_stack)
    )
    return template


def template_preview(
    template: BatchTemplate, *, theme: str | None = None, limit: int | None = 5
) -> list[tuple[int, str]]:
    """The first rows' constructed prompts, (row number, prompt), for the admin and pages."""
    theme = template.example_theme if theme is None else theme
    return [
        (
            index + 1,
            template_row_prompt(
                base_prompt=template.base_prompt,
                prompt_template=template.prompt_template,
                style_suffix=template.style_suffix,
                theme=theme,
                row=row,
            ),
        )
        for index, row in enumerate(template.csv_data[:limit])
    ]
