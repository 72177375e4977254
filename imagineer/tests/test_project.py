from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.management import call_command

from imagineer.errors import ApplicationError


def test_no_missing_migrations(db):
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_system_check_is_clean():
    call_command("check", fail_level="WARNING")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEBUG", "maybe"),
        ("CELERY_TASK_TIME_LIMIT", "soon"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("IMAGINEER_DEVICE", "tpu"),
        ("DATABASE_URL", "notadb://x"),
        ("IMAGINEER_CONTROLNET", "/nonexistent/controlnet"),
        ("IMAGINEER_CONTROLNET", __file__),  # a single file: only a diffusers folder is read offline
    ],
)
def test_bad_environment_value_fails_at_start_naming_the_variable(variable, value):
    env = {**os.environ, variable: value}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**env, "DJANGO_SETTINGS_MODULE": "imagineer.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr


def test_secret_key_required_without_debug():
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "", "DJANGO_SETTINGS_MODULE": "imagineer.settings"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_application_error_maps_fields_to_django_validation_error():
    error = ApplicationError("Width is wrong", fields={"width": ["Width is wrong"]}).as_validation_error()
    assert error.message_dict == {"width": ["Width is wrong"]}


def test_application_errors_go_beside_the_form_fields_they_name():
    from django import forms

    from imagineer.errors import form_add_application_error

    class SizeForm(forms.Form):
        width = forms.IntegerField()
        upload = forms.FileField(required=False)

    def shown(error: ApplicationError, **kwargs) -> dict[str, list[str]]:
        form = SizeForm({"width": "64"})
        assert form.is_valid()
        form_add_application_error(form, error, **kwargs)
        return {name: [str(error) for error in errors] for name, errors in form.errors.items()}

    fields = {"width": ["Not a multiple of 8."], "height": ["Too tall."], "file": ["Not a LoRA."]}
    assert shown(ApplicationError("Bad size", fields=fields), aliases={"file": "upload"}) == {
        "width": ["Not a multiple of 8."],
        "__all__": ["Too tall."],
        "upload": ["Not a LoRA."],
    }
    assert shown(ApplicationError("The queue is full.")) == {"__all__": ["The queue is full."]}
    assert shown(ApplicationError("Not a LoRA."), fallback="upload") == {"upload": ["Not a LoRA."]}


def test_one_duration_filter_for_every_eta():
    from imagineer.templatetags.imagineer_tags import duration

    seconds = (None, -3, 4.4, 65, 130, 7260)
    assert [duration(s) for s in seconds] == ["", "0 s", "4 s", "1 min 05 s", "2 min 10 s", "2 h 01 min"]


def test_home_page_lists_templates_and_warns_about_the_noise_model(client, user, settings):
    settings.IMAGINEER_MODEL = ""
    call_command("load_builtin_templates", verbosity=0)
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Playing Card Deck" in body and "Tarot Major Arcana" in body and "Zodiac Signs" in body
    assert "makes noise" in body


def test_home_page_requires_sign_in(client, db):
    response = client.get("/")
    assert response.status_code == 302
