"""Read and change the runtime configuration (generation defaults and hardware options).

The configuration is grouped as the original's config.yaml was::

    {"generation": {"width": 512, ...}, "hardware": {"device": "auto", ...}}

Only the keys in :data:`CONFIG_KEYS` exist. Paths, secrets and the model are set in the
environment and cannot be changed here: a change naming them is refused with a message
that says so, rather than silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from generation.models import GUIDANCE_MAX, GUIDANCE_MIN, SIZE_MAX, SIZE_MIN, STEPS_MAX, STEPS_MIN
from imagineer.errors import ApplicationError
from imagineer.models import Config

BATCH_SIZE_MAX = 64


@dataclass(frozen=True)
class ConfigKey:
    section: str
    name: str
    check: Callable[[Any], str | None]
    """Returns an error message for a bad value, None for a good one."""


def _whole(minimum: int, maximum: int, *, multiple_of: int = 1) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be a whole number between {minimum} and {maximum}."
        if not minimum <= value <= maximum:
            return f"must be between {minimum} and {maximum}; got {value}."
        if value % multiple_of:
            low = value - value % multiple_of
            return f"{value} is not a multiple of {multiple_of}; use {low} or {low + multiple_of}."
        return None

    return check


def _number(minimum: float, maximum: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # NaN != NaN
            return f"must be a number between {minimum} and {maximum}."
        if not minimum <= value <= maximum:
            return f"must be between {minimum} and {maximum}; got {value}."
        return None

    return check


def _text(max_length: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return "must be text."
        if len(value) > max_length:
            return f"is {len(value):,} characters; the limit is {max_length:,}."
        return None

    return check


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false."


def _device(value: Any) -> str | None:
    choices = list(Config.Device.values)
    return None if value in choices else f"must be one of {', '.join(choices)}."


CONFIG_KEYS: dict[str, ConfigKey] = {
    key.name: key
    for key in (
        ConfigKey("generation", "width", _whole(SIZE_MIN, SIZE_MAX, multiple_of=8)),
        ConfigKey("generation", "height", _whole(SIZE_MIN, SIZE_MAX, multiple_of=8)),
        ConfigKey("generation", "steps", _whole(STEPS_MIN, STEPS_MAX)),
        ConfigKey("generation", "guidance_scale", _number(GUIDANCE_MIN, GUIDANCE_MAX)),
        ConfigKey("generation", "negative_prompt", _text(settings.IMAGINEER_MAX_PROMPT_CHARS)),
        ConfigKey("generation", "batch_size", _whole(0, BATCH_SIZE_MAX)),
        ConfigKey("hardware", "device", _device),
        ConfigKey("hardware", "mixed_precision", _boolean),
        ConfigKey("hardware", "enable_attention_slicing", _boolean),
        ConfigKey("hardware", "enable_vae_slicing", _boolean),
        ConfigKey("hardware", "enable_xformers", _boolean),
    )
}
SECTIONS = ("generation", "hardware")
# Sections of the original config.yaml that exist only in the environment here.
ENVIRONMENT_SECTIONS = {
    "model": "IMAGINEER_MODEL",
    "output": "MEDIA_ROOT",
    "sets": "the batch templates (admin or pages)",
    "training": "the IMAGINEER_TRAINING_* variables",
}


def config_load() -> Config:
    """The configuration row, created with its defaults the first time it is needed."""
    config, _ = Config.objects.get_or_create(pk=Config.SINGLETON_ID)
    return config


def _as_dict(config: Config) -> dict[str, Any]:
    values: dict[str, Any] = {section: {} for section in SECTIONS}
    for key in CONFIG_KEYS.values():
        values[key.section][key.name] = getattr(config, key.name)
    return values


def config_get() -> dict[str, Any]:
    """``{"generation": {...}, "hardware": {...}}`` with every key."""
    return _as_dict(config_load())


def _changes_validate(changes: Any, *, partial: bool) -> dict[str, Any]:
    """Flatten ``{"generation": {...}, "hardware": {...}}`` into {key: value}, naming every bad key."""
    if not isinstance(changes, Mapping):
        raise ApplicationError('Send a JSON object such as {"generation": {"steps": 30}}.')
    errors: dict[str, list[str]] = {}
    flat: dict[str, Any] = {}
    for section, values in changes.items():
        if section in ENVIRONMENT_SECTIONS:
            errors[section] = [f"cannot be changed over HTTP; it is set by {ENVIRONMENT_SECTIONS[section]}."]
            continue
        if section not in SECTIONS:
            errors[section] = [f"is not a configuration section; the sections are {', '.join(SECTIONS)}."]
            continue
        if not isinstance(values, Mapping):
            errors[section] = ["must be an object of key: value pairs."]
            continue
        for name, value in values.items():
            key = CONFIG_KEYS.get(name)
            if key is None or key.section != section:
                known = ", ".join(k.name for k in CONFIG_KEYS.values() if k.section == section)
                errors[f"{section}.{name}"] = [f"is not a {section} setting; the settings are {known}."]
                continue
            problem = key.check(value)
            if problem:
                errors[f"{section}.{name}"] = [problem]
            else:
                flat[name] = value
    if not partial:
        for key in CONFIG_KEYS.values():
            if key.name not in flat and f"{key.section}.{key.name}" not in errors:
                errors[f"{key.section}.{key.name}"] = ["is required when replacing the whole configuration (PUT)."]
    if errors:
        field, messages = next(iter(errors.items()))
        raise ApplicationError(f"{field} {messages[0]}", fields=errors)
    return flat


@transaction.atomic
def config_update(*, changes: Mapping[str, Any], user: User | None, partial: bool = True) -> dict[str, Any]:
    """Apply validated changes (all of them or none) and return the whole configuration.

    ``partial=False`` (PUT) needs every key, so a client cannot reset values by forgetting them.
    Permission (superusers only) is checked by the caller.
    """
    flat = _changes_validate(changes, partial=partial)
    config = Config.objects.select_for_update().filter(pk=Config.SINGLETON_ID).first() or config_load()
    for name, value in flat.items():
        setattr(config, name, float(value) if name == "guidance_scale" else value)
    config.updated_by = user
    config.save(update_fields=[*flat, "updated_by", "updated_at"])
    return _as_dict(config)
