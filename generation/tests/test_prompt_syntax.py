"""A1111 prompt syntax in the engine: parsing, weighted 75-token chunks, batched equals alone.

The expected parses are the examples in the docstring of A1111's
``modules/prompt_parser.py: parse_prompt_attention``; the expected embeddings are computed
here the way A1111's ``sd_hijack_clip`` + ``sd_emphasis.EmphasisOriginal`` compute them,
written from that documented behaviour rather than imported from our module.
"""

from __future__ import annotations

import pytest
import torch

from generation.engine.prompt_syntax import (
    LoraTag,
    PromptSyntaxError,
    attention_parse,
    lora_tags,
    prompt_check,
)
from generation.engine.runtime import BatchSettings, ImageRequest
from generation.tests.support import pixel_difference

SMALL = BatchSettings(width=64, height=64, steps=3, guidance_scale=7.0)
LONG = "a zodiac card, " + ", ".join(f"a ram with curled golden horns number {n}" for n in range(25))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("normal text", [("normal text", 1.0)]),
        ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
        ("(unbalanced", [("unbalanced", 1.1)]),
        ("\\(literal\\]", [("(literal]", 1.0)]),
        ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
        (
            "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
            [
                ("a ", 1.0),
                ("house", 1.5730000000000004),
                (" ", 1.1),
                ("on", 1.0),
                (" a ", 1.1),
                ("hill", 0.55),
                (", sun, ", 1.1),
                ("sky", 1.4641000000000006),
                (".", 1.1),
            ],
        ),
        ("[[faded]] ink", [("faded", 1 / 1.1 / 1.1), (" ink", 1.0)]),
        ("a fox BREAK a whale", [("a fox", 1.0), ("BREAK", -1.0), ("a whale", 1.0)]),
        # A1111 takes "(x:w)" only without spaces before the number; otherwise it is text.
        ("(style: 1.3)", [("style: 1.3", 1.1)]),
        ("", [("", 1.0)]),
    ],
)
def test_attention_parse_matches_a1111s_documented_examples(text, expected):
    parsed = attention_parse(text)
    assert [run[0] for run in parsed] == [run[0] for run in expected]
    assert [run[1] for run in parsed] == pytest.approx([run[1] for run in expected])


def test_lora_tags_read_a1111s_arguments():
    prompt = "a fox <lora:ink wash:0.7>, <lyco:old lycoris> <lora:deco:0.4:0.4> <lora:film:te=-0.5:unet=-0.5>"
    assert lora_tags(prompt) == [
        LoraTag("<lora:ink wash:0.7>", "ink wash", 0.7),
        LoraTag("<lyco:old lycoris>", "old lycoris", 1.0),
        LoraTag("<lora:deco:0.4:0.4>", "deco", 0.4),
        LoraTag("<lora:film:te=-0.5:unet=-0.5>", "film", -0.5),
    ]


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("a [cat:dog:0.5] on a mat", r"Prompt editing \[from:to:when\] \(at ':0.5\]'\)"),
        ("a [cat:10] on a mat", r"Prompt editing"),
        ("a [cat|dog] on a mat", r"Alternation \[a\|b\]"),
        ("a cat AND a dog", r"Composable prompts \(AND"),
        ("<hypernet:anime:1>", r"<hypernet:anime:1>: Hypernetworks are not supported"),
        ("<embedding:x:1>", r"Extra networks of kind 'embedding' are not supported"),
        ("<lora:x:1:0.5>", r"<lora:x:1:0.5>: separate text-encoder \(1\) and UNet \(0.5\) weights"),
        ("<lora:x:1:1:8>", r"DyLoRA rank"),
        ("<lora:x:heavy>", r"<lora:x:heavy>: 'heavy' is not a number"),
        ("<lora: :1>", r"names no LoRA"),
        ("<lora:x:nan>", r"not a finite number"),
    ],
)
def test_syntax_we_cannot_draw_is_refused_naming_it(prompt, message):
    with pytest.raises(PromptSyntaxError, match=message):
        prompt_check(prompt)


@pytest.mark.parametrize("prompt", ["[style: dark]", "(a:b)", "\\[cat:dog:0.5\\]", "black and white", "[a]|b", ""])
def test_look_alikes_of_refused_syntax_are_accepted(prompt):
    prompt_check(prompt)


def _old_encode(engine, text: str) -> torch.Tensor:
    """The engine's encoding before prompt syntax was read: the raw text, split every 75 tokens."""
    tokenizer = engine.pipe.tokenizer
    ids = tokenizer(text, add_special_tokens=False).input_ids
    chunks = [ids[start : start + 75] for start in range(0, len(ids), 75)] or [[]]
    rows = []
    for chunk in chunks:
        row = [tokenizer.bos_token_id, *chunk, tokenizer.eos_token_id]
        rows.append(row + [tokenizer.pad_token_id] * (77 - len(row)))
    hidden = engine.pipe.text_encoder(torch.tensor(rows))[0]
    return hidden.reshape(1, -1, hidden.shape[-1])


def _a1111_encode(engine, fragments: list[tuple[str, float]]) -> torch.Tensor:
    """One chunk as A1111 encodes it: fragments tokenized apart, weighted, mean restored."""
    tokenizer = engine.pipe.tokenizer
    ids, multipliers = [], []
    for text, weight in fragments:
        tokens = tokenizer(text, add_special_tokens=False).input_ids
        ids += tokens
        multipliers += [weight] * len(tokens)
    row = [tokenizer.bos_token_id, *ids, tokenizer.eos_token_id]
    row += [tokenizer.eos_token_id] * (77 - len(row))
    multipliers = [1.0, *multipliers] + [1.0] * (77 - len(multipliers) - 1)
    z = engine.pipe.text_encoder(torch.tensor([row]))[0]
    original_mean = z.mean()
    z = z * torch.tensor(multipliers).reshape(1, 77, 1).expand(z.shape)
    return z * (original_mean / z.mean())


@torch.inference_mode()
def test_a_prompt_without_syntax_encodes_exactly_as_before(engine):
    for text in ("a tarot card, the fool, gold leaf", LONG, ""):
        assert torch.equal(engine._encode(engine.prompt_chunks(text)), _old_encode(engine, text))


@pytest.fixture
def clip_with_bias(engine):
    """The tiny text encoder with a final layer-norm bias, as real CLIP has: its output is not centred."""
    encoder = engine.pipe.text_encoder
    norm = getattr(encoder, "text_model", encoder).final_layer_norm
    saved = norm.bias.detach().clone()
    with torch.no_grad():
        norm.bias.copy_(torch.linspace(-0.2, 0.5, saved.numel()))
    yield engine
    with torch.no_grad():
        norm.bias.copy_(saved)


@torch.inference_mode()
def test_weights_are_applied_as_a1111s_original_emphasis(clip_with_bias):
    engine = clip_with_bias
    prompt = "a (red:1.5) fox, [blue] sky, (((moon)))"
    expected = _a1111_encode(
        engine, [("a ", 1.0), ("red", 1.5), (" fox, ", 1.0), ("blue", 1 / 1.1), (" sky, ", 1.0), ("moon", 1.1**3)]
    )
    ours = engine._encode(engine.prompt_chunks(prompt))
    assert ours.shape == expected.shape
    torch.testing.assert_close(ours, expected)
    assert abs(float(ours.mean()) - float(_old_encode(engine, "a red fox, blue sky, moon").mean())) < 1e-3


@torch.inference_mode()
def test_a_centred_encoder_gets_the_weights_without_dividing_by_its_zero_mean(engine):
    """The built-in model's CLIP output has a mean of rounding noise; A1111's rescaling would give inf/NaN."""
    for prompt in ("a red fox BREAK (a blue whale:0.6)", "(ugly:1.3)", "[[[faded]]] (x:-1)"):
        ours = engine._encode(engine.prompt_chunks(prompt))
        assert torch.isfinite(ours).all()
    weighted = engine._encode(engine.prompt_chunks("a (red:1.5) fox"))
    plain = _old_encode(engine, "a red fox")
    red = 2  # BOS, "a", "red"
    torch.testing.assert_close(weighted[0, red], plain[0, red] * 1.5)
    torch.testing.assert_close(weighted[0, red + 1], plain[0, red + 1])
    # Weight 1 is the plain word; escaped brackets are the literal characters.
    assert torch.equal(engine._encode(engine.prompt_chunks("a (fox:1)")), _old_encode(engine, "a fox"))
    assert torch.equal(engine._encode(engine.prompt_chunks("a \\(fox\\)")), _old_encode(engine, "a (fox)"))
    assert not torch.equal(engine._encode(engine.prompt_chunks("a (fox)")), _old_encode(engine, "a (fox)"))


@torch.inference_mode()
def test_break_starts_a_new_chunk_and_tags_are_not_encoded(engine):
    tokenizer = engine.pipe.tokenizer
    chunks = engine.prompt_chunks("a red fox BREAK a blue whale")
    assert [chunk.ids for chunk in chunks] == [
        tuple(tokenizer("a red fox", add_special_tokens=False).input_ids),
        tuple(tokenizer("a blue whale", add_special_tokens=False).input_ids),
    ]
    # A BREAK inside a long prompt ends its chunk early: one more chunk than without it.
    assert len(engine.prompt_chunks(LONG)) == 5
    assert len(engine.prompt_chunks(LONG.replace("number 12,", "number 12 BREAK"))) == 6
    # The tag names a LoRA for the stack; CLIP never sees it.
    assert torch.equal(
        engine._encode(engine.prompt_chunks("a fox <lora:ink wash:0.7>, at night")),
        _old_encode(engine, "a fox , at night"),
    )


def test_weighted_prompts_batched_equal_alone_and_weights_change_the_image(engine):
    requests = [
        ImageRequest("a (red:1.4) fox, [[blurry]]", "(ugly:1.3)", 11),
        ImageRequest(LONG.replace("number 3", "(number 3:1.6)"), "", 12),
        ImageRequest("a red fox BREAK (a blue whale:0.6)", "blurry", 13),
        ImageRequest("a red fox, blurry", "ugly", 11),
        ImageRequest(LONG.replace("number 12,", "number 12 BREAK"), "[low quality]", 15),
    ]
    batched = engine.generate(requests, SMALL, batch_size=4)
    assert [image.prompt_chunks for image in batched] == [1, 5, 2, 1, 6]
    for request, image in zip(requests, batched, strict=True):
        alone = engine.generate([request], SMALL, batch_size=1)[0]
        # Batched matrix products may round differently in the last bit; allow 1/255.
        assert pixel_difference(alone.image, image.image) <= 1
    plain = engine.generate([ImageRequest("a red fox", "ugly", 11)], SMALL)[0].image
    weighted = engine.generate([ImageRequest("a (red:1.4) fox", "ugly", 11)], SMALL)[0].image
    assert pixel_difference(plain, weighted) > 0
