"""CLIP BPE tokenizer files (vocab.json + merges.txt) in the layout transformers' CLIPTokenizer reads.

SD1.5 uses OpenAI's CLIP tokenizer. Its merges ship as ``bpe_simple_vocab_16e6.txt.gz`` (in
the open-clip-torch wheel); the vocabulary is derived from them the way CLIP builds it: the
256 byte symbols, the same with ``</w>``, one token per merge, then the two special tokens.
The tiny model uses the first few thousand merges of the same list, so its embedding table
stays small while it tokenizes text the way SD1.5 does.
"""

from __future__ import annotations

import json
from pathlib import Path

SPECIAL_TOKENS = ("<|startoftext|>", "<|endoftext|>")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(code) for code in codes), strict=True))


def clip_merges_read(merges_txt: Path) -> list[tuple[str, str]]:
    lines = merges_txt.read_text(encoding="utf-8").splitlines()
    pairs = (line.split() for line in lines[1:] if line and not line.startswith("#version"))
    return [(first, second) for first, second in pairs]


def clip_tokenizer_write(merges: list[tuple[str, str]], folder: Path, *, model_max_length: int = 77) -> None:
    """Write vocab.json, merges.txt and the tokenizer configs for ``merges`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = list(bytes_to_unicode().values())
    vocab_list = symbols + [symbol + "</w>" for symbol in symbols] + ["".join(pair) for pair in merges]
    vocab_list += list(SPECIAL_TOKENS)
    vocab = {token: index for index, token in enumerate(vocab_list)}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges_text = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)
    (folder / "merges.txt").write_text(merges_text, encoding="utf-8")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": model_max_length,
        "bos_token": SPECIAL_TOKENS[0],
        "eos_token": SPECIAL_TOKENS[1],
        "unk_token": SPECIAL_TOKENS[1],
        "pad_token": SPECIAL_TOKENS[1],
        "do_lower_case": True,
        "errors": "replace",
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": True,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    special = {
        "bos_token": SPECIAL_TOKENS[0],
        "eos_token": SPECIAL_TOKENS[1],
        "unk_token": SPECIAL_TOKENS[1],
        "pad_token": SPECIAL_TOKENS[1],
    }
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")
