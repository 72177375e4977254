"""CLIP token counts for prompts, as SD1.5's tokenizer splits them, without transformers or torch.

The pages show how many tokens each constructed prompt has: the engine encodes a prompt in
chunks of 75 tokens (77 with the start and end tokens), so a prompt past 75 is not cut off but
costs another chunk, and words near a chunk edge lose context. This is OpenAI CLIP's byte-level
BPE (``simple_tokenizer.py``, as transformers runs it without ftfy) over the vocabulary and merges in ``data/sd15-config/tokenizer``;
``generation/tests/test_tokens.py`` checks it against transformers' CLIPTokenizer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import regex  # type: ignore[import-untyped]
from django.conf import settings

from generation.engine.prompt_syntax import CHUNK_TOKENS, weighted_chunks
from generation.engine.tokenizer_files import bytes_to_unicode, clip_merges_read

_PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)
_WHITESPACE = regex.compile(r"\s+")
# transformers' CLIPTokenizer (what the engine's pipelines use) runs text through BERT's basic
# tokenizer when ftfy is absent, which sets every CJK ideograph apart: so does this.
_CJK = regex.compile(
    "([\u4e00-\u9fff\u3400-\u4dbf\U00020000-\U0002a6df\U0002a700-\U0002b73f\U0002b740-\U0002b81f"
    "\U0002b820-\U0002ceaf\uf900-\ufaff\U0002f800-\U0002fa1f])"
)


class _ClipBpe:
    def __init__(self, folder: Path) -> None:
        self.encoder: dict[str, int] = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        self.ranks = {pair: rank for rank, pair in enumerate(clip_merges_read(folder / "merges.txt"))}
        self.byte_encoder = bytes_to_unicode()
        self.cache: dict[str, list[str]] = {}

    def bpe(self, token: str) -> list[str]:
        cached = self.cache.get(token)
        if cached is not None:
            return cached
        word = [*token[:-1], token[-1] + "</w>"]
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda pair: self.ranks.get(pair, float("inf")))
            if best not in self.ranks:
                break
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        if len(self.cache) < 50_000:
            self.cache[token] = word
        return word

    def encode(self, text: str) -> list[int]:
        text = _CJK.sub(r" \1 ", text)
        text = _WHITESPACE.sub(" ", text).strip().lower()
        ids: list[int] = []
        for piece in _PATTERN.findall(text):
            encoded = "".join(self.byte_encoder[byte] for byte in piece.encode("utf-8"))
            ids.extend(self.encoder.get(token, 0) for token in self.bpe(encoded))
        return ids


@lru_cache(maxsize=1)
def _tokenizer() -> _ClipBpe:
    return _ClipBpe(Path(settings.IMAGINEER_SD15_CONFIG_DIR) / "tokenizer")


@dataclass(frozen=True)
class PromptTokens:
    tokens: int  # without the start and end tokens, nor <lora:...> tags, brackets or BREAK
    chunks: int  # 75-token chunks the engine encodes it in (BREAK starts a new one)


def prompt_tokens(prompt: str) -> PromptTokens:
    """How the engine will split ``prompt``: its A1111 syntax read as
    :func:`generation.engine.prompt_syntax.weighted_chunks` reads it, tokenized as CLIP does."""
    tokenizer = _tokenizer()
    chunks = weighted_chunks(prompt, lambda texts: [tokenizer.encode(text) for text in texts], size=CHUNK_TOKENS)
    return PromptTokens(tokens=sum(len(chunk) for chunk in chunks), chunks=len(chunks))


def prompt_token_count(text: str) -> int:
    """How many CLIP tokens plain ``text`` is, without the start and end tokens."""
    return len(_tokenizer().encode(text))
