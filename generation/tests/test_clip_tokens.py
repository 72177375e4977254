"""The pages' CLIP token counter matches the tokenizer the engine uses (transformers' CLIPTokenizer)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from generation.engine.clip_tokens import clip_tokenizer, prompt_tokens

FOLDER = Path(settings.IMAGINEER_SD15_CONFIG_DIR) / "tokenizer"


@pytest.mark.parametrize(
    "text",
    [
        "a zodiac sign emblem, centered composition, the ♈ glyph, Hamal and Sheratan's stars",
        "牡羊座 الحمل 12 cards!! — art-deco   GOLD",
        "the 10 of Spades, don't fade; it'll shine",
    ],
)
def test_token_ids_equal_clips(text):
    from transformers import CLIPTokenizer

    reference = CLIPTokenizer.from_pretrained(str(FOLDER))
    assert (
        clip_tokenizer(str(FOLDER)).encode(text, add_special_tokens=False).ids
        == reference(text, add_special_tokens=False).input_ids
    )


def test_long_prompts_split_into_75_token_chunks_and_bad_syntax_is_reported():
    long = ", ".join(f"a ram with curled golden horns number {n}" for n in range(12))
    tokens = prompt_tokens(long, tokenizer_folder=FOLDER)
    assert tokens.count > 75 and len(tokens.chunks) == 2 and tokens.chunks[0].startswith("a ram with")
    assert prompt_tokens("a (red:1.5) ram BREAK a bull", tokenizer_folder=FOLDER).chunks == ("a red ram", "a bull")
    assert "not supported" in prompt_tokens("a ram AND a bull", tokenizer_folder=FOLDER).error
