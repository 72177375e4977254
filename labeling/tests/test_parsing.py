"""Reading Claude's answers: the CLI envelope, fences, prose, and clear failures."""

from __future__ import annotations

import json

import pytest

from labeling.backends import LabelError, LabelParseError, TransientLabelError
from labeling.backends.cli import ProcessOutput, Redactor, output_interpret
from labeling.backends.parsing import response_parse, tags_normalise

GOOD = {"description": "A cat on a sofa.", "nsfw_rating": "SAFE", "tags": ["cat", "sofa"]}


def envelope(result: str, **extra) -> str:
    return json.dumps({"type": "result", "subtype": "success", "is_error": False, "result": result, **extra})


def test_envelope_with_json_result_and_model_from_usage():
    raw = envelope(json.dumps(GOOD), modelUsage={"claude-a": {"outputTokens": 1}, "claude-b": {"outputTokens": 50}})
    parsed, model = response_parse(raw, "default")
    assert parsed == {"caption": "A cat on a sofa.", "nsfw_rating": "SAFE", "tags": ["cat", "sofa"]}
    assert model == "claude-b"


def test_verbose_message_list_takes_the_result_message():
    raw = json.dumps(
        [
            {"type": "system", "subtype": "init", "model": "claude-init-model"},
            {"type": "assistant", "message": {"content": "thinking"}},
            {"type": "result", "subtype": "success", "is_error": False, "result": json.dumps(GOOD)},
        ]
    )
    parsed, model = response_parse(raw, "default")
    assert parsed["caption"] == "A cat on a sofa."
    assert model == "claude-init-model"


@pytest.mark.parametrize(
    "text",
    [
        f"Sure! Here it is:\n```json\n{json.dumps(GOOD)}\n```\nAnything else?",
        f"```\n{json.dumps(GOOD)}\n```",
        f"The analysis {{as requested}} follows: {json.dumps(GOOD)} -- done.",
    ],
)
def test_json_in_fences_or_prose_is_accepted(text):
    parsed, _ = response_parse(envelope(text), "default")
    assert parsed["tags"] == ["cat", "sofa"]


def test_bare_json_without_envelope():
    parsed, model = response_parse(json.dumps({**GOOD, "nsfw_rating": " explicit "}), "default")
    assert parsed["nsfw_rating"] == "EXPLICIT"
    assert model is None


def test_sd_training_reads_caption():
    raw = envelope(json.dumps({"caption": "a cat, sofa, soft light", "nsfw_rating": "SAFE", "tags": []}))
    assert response_parse(raw, "sd_training")[0]["caption"] == "a cat, sofa, soft light"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (envelope("I can't see an image."), "no JSON object"),
        (envelope(json.dumps({"tags": ["x"], "nsfw_rating": "SAFE"})), "no 'description'"),
        (envelope(json.dumps({**GOOD, "nsfw_rating": "PG-13"})), "not one of SAFE"),
        (envelope(json.dumps({"description": "x", "tags": []})), "no nsfw_rating"),
        (envelope("[1, 2, 3]"), "no JSON object"),
        ("", "printed nothing"),
        ("<html>502 Bad Gateway</html>", "no JSON object"),
    ],
)
def test_anything_else_fails_clearly_and_keeps_the_raw_response(raw, message):
    with pytest.raises(LabelParseError, match=message) as caught:
        response_parse(raw, "default")
    assert caught.value.raw_response == raw


def test_cli_error_envelope_rate_limit_is_transient():
    raw = json.dumps(
        {"type": "result", "subtype": "success", "is_error": True, "result": "Claude AI usage limit reached"}
    )
    with pytest.raises(TransientLabelError):
        response_parse(raw, "default")
    raw = json.dumps({"type": "result", "subtype": "error_max_turns", "is_error": False, "result": "stopped"})
    with pytest.raises(LabelError) as caught:
        response_parse(raw, "default")
    assert not caught.value.transient


def test_tags_normalised():
    tags = ["  Cat ", "cat", "#Sofa", "two   words", "", None, True, 7, *[f"t{i}" for i in range(30)]]
    result = tags_normalise(tags)
    assert result[:4] == ["cat", "sofa", "two words", "7"]
    assert len(result) == 20
    assert tags_normalise("a, B ,a") == ["a", "b"]
    assert tags_normalise({"not": "a list"}) == []


def test_redactor_removes_credential_values_even_json_escaped(tmp_path):
    creds = tmp_path / "c.json"
    creds.write_text(json.dumps({"oauth": {"accessToken": "sk-secret-token-1234", "expiresAt": 5}}))
    redact = Redactor(creds)
    text = f"token sk-secret-token-1234 and {json.dumps(creds.read_text())}"
    assert "sk-secret" not in redact(text)
    output = ProcessOutput(exit_code=1, stdout="", stderr=f"boom {creds.read_text()}")
    with pytest.raises(LabelError) as caught:
        output_interpret(output, prompt_type="default", source="claude-cli", default_model="m", redact=redact)
    assert "sk-secret" not in str(caught.value)
