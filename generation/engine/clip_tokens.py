"""CLIP token counts and 75-token chunks of a prompt, for pages: no torch, no transformers.

SD 1.x's CLIP tokenizer rebuilt with the ``tokenizers`` library from the vocabulary and merges
in a tokenizer folder (as transformers' CLIPTokenizerFast converter builds it), so the web
process can count a prompt's tokens as the engine will, without paying seconds to import
transformers. Prompts are split into chunks by the same code as the engine
(``prompt_syntax.weighted_chunks``: A1111 attention syntax, BREAK, <lora:...> tags removed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from generation.engine.prompt_syntax import CHUNK_TOKENS, PromptSyntaxError, prompt_check, weighted_chunks


@cache
def clip_tokenizer(folder: str) -> Any:
    """A ``tokenizers.Tokenizer`` equal to CLIP's for plain text (cached per folder)."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import BPE

    root = Path(folder)
    vocab = json.loads((root / "vocab.json").read_text(encoding="utf-8"))
    merges = []
    for line in (root / "merges.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#version"):
            first, second = line.split()
            merges.append((first, second))
    unknown = "<|endoftext|>"  # CLIP's unknown token is its end-of-text token
    tokenizer = Tokenizer(
        BPE(vocab, merges, continuing_subword_prefix="", end_of_word_suffix="</w>", unk_token=unknown)
    )
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""),
                behavior="removed",
                invert=True,
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


@dataclass(frozen=True)
class PromptTokens:
    count: int
    # The text of each 75-token chunk, in order (more than one: the prompt is encoded in parts).
    chunks: tuple[str, ...]
    error: str = ""


def prompt_tokens(prompt: str, *, tokenizer_folder: str | Path) -> PromptTokens:
    """How many CLIP tokens the prompt has and where its 75-token chunks break."""
    tokenizer = clip_tokenizer(str(tokenizer_folder))

    def tokenize(texts: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in tokenizer.encode_batch(texts, add_special_tokens=False)]

    try:
        prompt_check(prompt)
        chunks = weighted_chunks(prompt, tokenize, size=CHUNK_TOKENS)
    except PromptSyntaxError as exc:
        return PromptTokens(count=0, chunks=(), error=str(exc))
    texts = tuple(tokenizer.decode(list(chunk.ids)).replace("</w>", " ").strip() for chunk in chunks)
    return PromptTokens(count=sum(len(chunk) for chunk in chunks), chunks=texts)
