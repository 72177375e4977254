from __future__ import annotations

from allauth.account.forms import AddEmailForm as AllauthAddEmailForm
from allauth.account.forms import SignupForm as AllauthSignupForm
from django import forms

from accounts.services import TOKEN_NAME_MAX, email_refusal_reason

EXPIRY_CHOICES = [("", "Never"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year")]


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=TOKEN_NAME_MAX, help_text="What the token is for, e.g. “laptop script”.")
    expires_in_days = forms.TypedChoiceField(
        choices=EXPIRY_CHOICES, coerce=int, empty_value=None, required=False, label="Expires"
    )


class _AllowListedEmailMixin:
    """The sign-up allow-list on the addresses people type in (the address is then verified)."""

    def clean_email(self) -> str:
        email = super().clean_email()  # type: ignore[misc]  # the allauth form after this mixin has it
        reason = email_refusal_reason(email)
        if reason:
            raise forms.ValidationError(reason)
        return email


class SignupForm(_AllowListedEmailMixin, AllauthSignupForm):
    pass


class AddEmailForm(_AllowListedEmailMixin, AllauthAddEmailForm):
    pass
