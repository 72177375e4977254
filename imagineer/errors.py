"""The one domain error type.

Services raise ApplicationError with a message a user can act on and, where the problem
belongs to an input, the field names it belongs to. The API maps it to HTTP 400 with a stable
JSON body; forms put each message next to its field.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError


class ApplicationError(Exception):
    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.code = code

    def __str__(self) -> str:
        return self.message

    def as_validation_error(self) -> ValidationError:
        """The same error in the shape Django forms and model validation expect."""
        if self.fields:
            return ValidationError({name: list(messages) for name, messages in self.fields.items()})
        return ValidationError(self.message, code=self.code)


def field_error(field: str, message: str, *, code: str = "invalid") -> ApplicationError:
    return ApplicationError(message, fields={field: [message]}, code=code)
