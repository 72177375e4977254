"""The claude-cli backend: the same test double of the CLI, run on this host as a subprocess."""

from __future__ import annotations

import time

import pytest

from labeling.backends import LabelError, LabelParseError, TransientLabelError, labeler_get
from labeling.backends.claude_cli import ClaudeCliLabeler
from labeling.backends.cli import claude_args
from labeling.tests.conftest import SECRET_ACCESS, marked_png
from labeling.tests.docker_image import FAKE_DIR


@pytest.fixture(autouse=True)
def fake_cli(settings, credentials_file, monkeypatch):
    settings.IMAGINEER_LABELER = "claude-cli"
    settings.IMAGINEER_CLAUDE_BIN = str(FAKE_DIR / "claude")
    settings.IMAGINEER_CLAUDE_CREDENTIALS = credentials_file
    settings.IMAGINEER_LABEL_TIMEOUT = 20
    monkeypatch.setenv("HOME", str(credentials_file.parent.parent))


def test_good_and_fenced_answers(tmp_path):
    result = labeler_get().label(marked_png(tmp_path / "a b.png", None), "default")
    assert (result.source, result.caption, result.nsfw_rating) == (
        "claude-cli",
        "A flat red square on its own.",
        "SAFE",
    )
    assert labeler_get().label(marked_png(tmp_path / "f.png", "fenced"), "default").nsfw_rating == "SUGGESTIVE"


def test_failures(tmp_path):
    with pytest.raises(LabelParseError):
        labeler_get().label(marked_png(tmp_path / "g.png", "garbage"), "default")
    with pytest.raises(LabelError, match="status 2"):
        labeler_get().label(marked_png(tmp_path / "x.png", "fail"), "default")
    with pytest.raises(LabelError) as caught:
        labeler_get().label(marked_png(tmp_path / "l.png", "leak"), "default")
    assert SECRET_ACCESS not in f"{caught.value} {caught.value.raw_response}"


def test_hang_is_killed_at_the_timeout(tmp_path):
    started = time.monotonic()
    with pytest.raises(TransientLabelError, match="within 1s"):
        ClaudeCliLabeler(timeout=1).label(marked_png(tmp_path / "h.png", "hang"), "default")
    assert time.monotonic() - started < 5


def test_arguments_arrive_verbatim(tmp_path):
    image = marked_png(tmp_path / "e.png", "echo")
    nasty = f'Analyze the image at this path: {image}\n"$(id)" `id` ${{PATH}} \'; exit 1'
    output = ClaudeCliLabeler().run(image, claude_args(nasty))
    assert output.stdout.split("\0")[:-1] == claude_args(nasty)


def test_missing_executable_and_health(settings):
    assert labeler_get().health()["ok"] is True
    settings.IMAGINEER_CLAUDE_BIN = "claude-does-not-exist"
    health = labeler_get().health()
    assert health["ok"] is False and "not found" in health["detail"]
