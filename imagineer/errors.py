"""The one domain error type.

Services raise ApplicationError with a message a user can act on and, where the problem
belongs to an input, the field names it belongs to. The API maps it to HTTP 400 with a stable
JSON body; forms (pages and admin) put each message next to its field with
:func:`form_add_application_error`; management commands report it with :func:`command_error`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.management import CommandError


class ApplicationError(Exception):
    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.code = code

    def __str__(self) -> str:
        return self.message

    def as_validation_error(
        self,
        *,
        known: Collection[str] | None = None,
        aliases: Mapping[str, str] | None = None,
        fallback: str | None = None,
    ) -> ValidationError:
        """The same error in the shape Django forms and model validation expect.

        ``aliases`` rename the service's field names to the form's; with ``known`` (the form's
        field names) a message for any other field belongs to the whole form. An error that names
        no field goes to ``fallback`` if given, else to the whole form.
        """
        aliases = aliases or {}
        fields = self.fields or ({fallback: [self.message]} if fallback else {})
        if not fields:
            return ValidationError(self.message, code=self.code)
        errors: dict[str, list[ValidationError]] = {}
        for name, messages in fields.items():
            target = aliases.get(name, name)
            if known is not None and target not in known:
                target = NON_FIELD_ERRORS
            errors.setdefault(target, []).extend(ValidationError(message, code=self.code) for message in messages)
        return ValidationError(errors)


def form_add_application_error(
    form: forms.BaseForm,
    error: ApplicationError,
    *,
    aliases: Mapping[str, str] | None = None,
    fallback: str | None = None,
) -> None:
    """Show a service's error on a bound form: each message beside the field it names (through
    ``aliases``), anything else above the form."""
    form.add_error(None, error.as_validation_error(known=form.fields, aliases=aliases, fallback=fallback))


def field_error(field: str, message: str, *, code: str = "invalid") -> ApplicationError:
    return ApplicationError(message, fields={field: [message]}, code=code)


def command_error(error: ApplicationError) -> CommandError:
    """A management command's error for a service's: each field with its messages, else the message."""
    details = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.fields.items())
    return CommandError(details or error.message)
