"""The claude-docker backend against a real Docker engine and the test double of the CLI image."""

from __future__ import annotations

import json
import time

import pytest

from labeling.backends import LabelError, LabelParseError, TransientLabelError, labeler_get
from labeling.backends import claude_docker as claude_docker_module
from labeling.backends.base import prompt_build
from labeling.backends.claude_docker import ClaudeDockerLabeler
from labeling.backends.cli import claude_args
from labeling.tests.conftest import SECRET_ACCESS, SECRET_REFRESH, marked_png

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("claude_docker_settings", "no_leftover_containers")]


def test_good_answer_becomes_a_label_result(tmp_path):
    result = labeler_get().label(marked_png(tmp_path / "a.png", "good"), "default")
    assert result.source == "claude-docker"
    assert result.source_model == "claude-sonnet-test"
    assert result.caption == "A flat red square on its own."
    assert result.nsfw_rating == "SAFE"
    assert result.tags == ["red", "square", "flat colour", "minimal"]


def test_sd_training_prompt_gets_a_training_caption(tmp_path):
    result = labeler_get().label(marked_png(tmp_path / "a.png", None), "sd_training")
    assert result.caption == "a red square, flat colour, centered composition, studio lighting"
    assert result.prompt_type == "sd_training"


def test_json_in_fences_is_accepted(tmp_path):
    result = labeler_get().label(marked_png(tmp_path / "a.png", "fenced"), "default")
    assert result.caption == "A red square in a fence."
    assert result.nsfw_rating == "SUGGESTIVE"


def test_garbage_is_a_clear_failure_that_keeps_the_raw_response(tmp_path):
    with pytest.raises(LabelParseError, match="no JSON object") as caught:
        labeler_get().label(marked_png(tmp_path / "a.png", "garbage"), "default")
    assert "I am sorry, I cannot describe this image." in caught.value.raw_response
    assert not caught.value.transient


def test_non_zero_exit_is_a_permanent_failure_with_stderr(tmp_path):
    with pytest.raises(LabelError, match=r"exited with status 2: Error: Invalid API key") as caught:
        labeler_get().label(marked_png(tmp_path / "a.png", "fail"), "default")
    assert not caught.value.transient


def test_rate_limit_is_transient(tmp_path):
    with pytest.raises(TransientLabelError, match="429"):
        labeler_get().label(marked_png(tmp_path / "a.png", "ratelimit"), "default")


def test_hang_is_killed_at_the_timeout_and_removed(tmp_path, docker_client):
    labeler = ClaudeDockerLabeler(timeout=2)
    started = time.monotonic()
    with pytest.raises(TransientLabelError, match="did not finish within 2s"):
        labeler.label(marked_png(tmp_path / "a.png", "hang"), "default")
    assert time.monotonic() - started < 10
    # no_leftover_containers checks that the killed container is gone too


def test_prompt_with_quotes_and_substitutions_arrives_verbatim(tmp_path):
    nasty = (
        "Analyze the image at this path: /images/image.png\n"
        "it's \"quoted\" `uname -a` $(touch /tmp/pwned) ${HOME} $HOME; rm -rf / && echo '|' \\ \n\t* ? [a] ~ #"
    )
    output = ClaudeDockerLabeler().run(marked_png(tmp_path / "a.png", "echo"), claude_args(nasty))
    assert output.exit_code == 0
    assert output.stdout.split("\0")[:-1] == claude_args(nasty)


def test_container_is_confined(tmp_path, credentials_file, settings):
    image = marked_png(tmp_path / "my secret name.png", "probe")
    before = image.read_bytes()
    output = ClaudeDockerLabeler().run(image, claude_args(prompt_build("default", "/images/image.png")))
    facts = dict(line.split("=", 1) for line in output.stdout.strip().splitlines())
    assert facts["image"] == "read-only"
    assert image.read_bytes() == before
    assert facts["images_dir"].split() == ["image.png"]  # only that one file, under a neutral name
    assert facts["rootfs"] == "read-only"
    assert facts["credentials_mount"] == "read-only"
    assert facts["credentials_copied"] == "yes"
    assert facts["home"] == "writable"  # the tmpfs home
    assert facts["uid"] == "1000"
    assert facts["pid1"] == "docker-init"
    assert facts["CapEff"] == facts["CapBnd"] == "0000000000000000"
    assert facts["NoNewPrivs"] == "1"
    assert facts["networks"].split() == ["lo"]
    assert int(facts["memory_limit"]) == settings.IMAGINEER_LABEL_MEMORY_MB * 1024 * 1024
    assert facts["pids_limit"] == str(settings.IMAGINEER_LABEL_PIDS_LIMIT)
    assert json.loads(credentials_file.read_text())["claudeAiOauth"]["accessToken"] == SECRET_ACCESS


def test_credentials_never_appear_in_errors_or_results(tmp_path, credentials_file):
    with pytest.raises(LabelError) as caught:
        labeler_get().label(marked_png(tmp_path / "a.png", "leak"), "default")
    shown = f"{caught.value} {caught.value.raw_response} {caught.value.fields}"
    assert SECRET_ACCESS not in shown and SECRET_REFRESH not in shown
    assert "[redacted]" in shown


def test_missing_image_on_the_engine_says_how_to_build_it(tmp_path, settings):
    settings.IMAGINEER_CLAUDE_IMAGE = "imagineer-no-such-image:latest"
    with pytest.raises(LabelError, match="docker build -t imagineer-no-such-image:latest docker/claude-cli/"):
        labeler_get().label(marked_png(tmp_path / "a.png", None), "default")
    health = labeler_get().health()
    assert health["engine_answers"] is True
    assert health["image_exists"] is False
    assert health["ok"] is False


def test_missing_credentials_say_how_to_get_them(tmp_path, settings):
    settings.IMAGINEER_CLAUDE_CREDENTIALS = tmp_path / "nowhere.json"
    with pytest.raises(LabelError, match="claude setup-token"):
        labeler_get().label(marked_png(tmp_path / "a.png", None), "default")


def test_engine_not_answering_is_transient(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.setattr(claude_docker_module, "_clients", {})
    with pytest.raises(TransientLabelError, match="not answering"):
        labeler_get().label(marked_png(tmp_path / "a.png", None), "default")
    health = labeler_get().health()
    assert health["engine_answers"] is False and health["ok"] is False


def test_health_reports_engine_and_image(claude_test_image):
    health = labeler_get().health()
    assert health == {**health, "backend": "claude-docker", "engine_answers": True, "image_exists": True, "ok": True}
    assert health["image"] == claude_test_image
