"""AUTOMATIC1111's prompt syntax: attention weights, BREAK and ``<lora:name:weight>`` tags.

What A1111 does with a prompt, and what this module does the same way:

- ``<kind:args>`` extra-network tags (``extra_networks.parse_prompt``) are cut out of the text
  before anything else; ``<lora:name:weight>`` (and its LyCORIS-era alias ``<lyco:...>``)
  names a LoRA of the library (resolved by the service that submits the job);
- ``(text)`` multiplies the attention of ``text`` by 1.1, ``[text]`` by 1/1.1,
  ``(text:1.3)`` by 1.3; brackets nest and multiply; an unclosed bracket runs to the end;
  ``\\(``, ``\\)``, ``\\[``, ``\\]`` and ``\\\\`` are the literal characters
  (``prompt_parser.parse_prompt_attention``, reimplemented from its documented behaviour);
- ``BREAK`` (upper case, a word of its own) ends the current 75-token chunk: the rest starts
  a new one;
- each chunk is encoded by CLIP on its own, every token's hidden state is multiplied by its
  weight, and the chunk is rescaled so that its mean is what it was before weighting
  (``sd_emphasis.EmphasisOriginal``, A1111's default "Original" emphasis). When that mean is
  rounding noise (an encoder whose output is centred, like the built-in random model's), the
  rescaling is left out rather than divide by almost zero.

Two differences, both on purpose: the mean is taken per prompt (A1111 takes it over its whole
batch, so there a prompt's picture depends on what it is batched with; here batched equals
alone), and a long prompt is split every 75 tokens as before (A1111 moves the split back to
the last comma within 20 tokens), so images of existing long prompts do not change.

Syntax A1111 understands but we cannot draw is refused, never drawn as literal text:
prompt editing ``[from:to:when]``, alternation ``[a|b]``, composable ``AND``, and extra-network
tags other than LoRAs. Nothing here needs torch until :func:`chunks_encode`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

CHUNK_TOKENS = 75
# A1111's extra_networks.re_extra_net.
EXTRA_NETWORK = re.compile(r"<(\w+):([^>]+)>")
LORA_KINDS = ("lora", "lyco")
# A1111's prompt_parser.re_attention: escapes, brackets, ":weight)", plain text, a lone colon.
_ATTENTION = re.compile(
    r"""
\\\(|
\\\)|
\\\[|
\\]|
\\\\|
\\|
\(|
\[|
:([+-]?[.\d]+)\)|
\)|
]|
[^\\()\[\]:]+|
:
""",
    re.X,
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)
_AND = re.compile(r"\bAND\b")
_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)\s*$")
ROUND = 1.1
SQUARE = 1 / 1.1
BREAK_WEIGHT = -1.0  # how a BREAK marker stands in the parsed list, as in A1111
# Below this fraction of the mean magnitude, a chunk's mean is noise and is not restored.
MEAN_FLOOR = 1e-4


class PromptSyntaxError(ValueError):
    """The prompt uses syntax we cannot draw as A1111 would; the message says what and where."""


@dataclass(frozen=True)
class LoraTag:
    text: str  # the tag as written, e.g. "<lora:ink wash:0.7>"
    name: str
    weight: float


@dataclass(frozen=True)
class WeightedChunk:
    ids: tuple[int, ...]
    weights: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def weighted(self) -> bool:
        return any(weight != 1.0 for weight in self.weights)


def _shown(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _float(value: str, tag: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise PromptSyntaxError(f"{tag}: {value.strip()!r} is not a number.") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise PromptSyntaxError(f"{tag}: {value.strip()!r} is not a finite number.")
    return number


def lora_tags(prompt: str) -> list[LoraTag]:
    """The LoRA tags of a prompt, in order; any other extra-network tag or argument is refused.

    A1111's arguments (``extra_networks.ExtraNetworkParams`` and the Lora extension): the
    name, then the text-encoder weight (default 1), then the UNet weight (default: the same),
    also as ``te=``/``unet=``; ``dyn=`` (DyLoRA rank) is a fourth one. One adapter here has
    one weight, so a tag whose two weights differ is refused rather than drawn otherwise.
    """
    tags = []
    for match in EXTRA_NETWORK.finditer(prompt):
        tag, kind, args = match.group(0), match.group(1), match.group(2)
        if kind.lower() not in LORA_KINDS:
            what = "Hypernetworks" if kind.lower() == "hypernet" else f"Extra networks of kind {kind!r}"
            raise PromptSyntaxError(f"{tag}: {what} are not supported; only <lora:name:weight> tags are.")
        positional, named = [], {}
        for item in args.split(":"):
            key, equals, value = item.partition("=")
            if equals:
                named[key.strip().lower()] = value
            else:
                positional.append(item)
        name = positional[0].strip() if positional else ""
        if not name:
            raise PromptSyntaxError(f"{tag}: the tag names no LoRA; write <lora:name:weight>.")
        unknown = sorted(set(named) - {"te", "unet", "dyn"})
        if unknown:
            raise PromptSyntaxError(f"{tag}: unknown argument {unknown[0]}=; A1111 knows te=, unet= and dyn=.")
        if len(positional) > 3 or "dyn" in named:
            raise PromptSyntaxError(f"{tag}: a DyLoRA rank (the fourth argument, dyn=) is not supported.")
        te = _float(positional[1], tag) if len(positional) > 1 else 1.0
        te = _float(named["te"], tag) if "te" in named else te
        unet = _float(positional[2], tag) if len(positional) > 2 else te
        unet = _float(named["unet"], tag) if "unet" in named else unet
        if te != unet:
            raise PromptSyntaxError(
                f"{tag}: separate text-encoder ({te:g}) and UNet ({unet:g}) weights are not supported; "
                "give the LoRA one weight."
            )
        tags.append(LoraTag(text=tag, name=name, weight=te))
    return tags


def extra_networks_strip(prompt: str) -> str:
    """The prompt without its ``<kind:args>`` tags, as A1111 hands it to the text encoder."""
    return EXTRA_NETWORK.sub("", prompt)


def prompt_check(prompt: str) -> None:
    """Refuse what A1111 would draw differently from us; tags are checked by :func:`lora_tags`."""
    lora_tags(prompt)
    text = extra_networks_strip(prompt)
    if _AND.search(text):
        raise PromptSyntaxError(
            "Composable prompts (AND in capitals) are not supported; write 'and' in lower case if you meant the word."
        )
    pieces = [match.group(0) for match in _ATTENTION.finditer(text)]
    square = 0
    for index, piece in enumerate(pieces):
        if piece == "[":
            square += 1
        elif piece == "]" and square:
            square -= 1
        elif square and "|" in piece and not piece.startswith("\\"):
            raise PromptSyntaxError(
                f"Alternation [a|b] (near {_shown(piece.strip())}) is not supported; "
                "write one of the words, or escape the bracket as \\[."
            )
        elif square and piece == ":":
            following = pieces[index + 1 : index + 3]
            if len(following) == 2 and _NUMBER.match(following[0]) and following[1] == "]":
                raise PromptSyntaxError(
                    f"Prompt editing [from:to:when] (at ':{following[0].strip()}]') is not supported; "
                    "write the words without the schedule, or escape the bracket as \\[."
                )


def attention_parse(text: str) -> list[tuple[str, float]]:
    """(text, weight) runs of a prompt without tags; a BREAK is ("BREAK", -1), as A1111 returns it."""
    runs: list[list[Any]] = []
    round_open: list[int] = []
    square_open: list[int] = []

    def multiply(start: int, factor: float) -> None:
        for run in runs[start:]:
            run[1] *= factor

    for match in _ATTENTION.finditer(text):
        piece, weight = match.group(0), match.group(1)
        if piece.startswith("\\"):
            runs.append([piece[1:], 1.0])
        elif piece == "(":
            round_open.append(len(runs))
        elif piece == "[":
            square_open.append(len(runs))
        elif weight is not None and round_open:
            multiply(round_open.pop(), float(weight))
        elif piece == ")" and round_open:
            multiply(round_open.pop(), ROUND)
        elif piece == "]" and square_open:
            multiply(square_open.pop(), SQUARE)
        else:
            for position, part in enumerate(_BREAK.split(piece)):
                if position:
                    runs.append(["BREAK", BREAK_WEIGHT])
                runs.append([part, 1.0])
    for start in round_open:
        multiply(start, ROUND)
    for start in square_open:
        multiply(start, SQUARE)
    if not runs:
        runs = [["", 1.0]]
    merged: list[list[Any]] = [runs[0]]
    for run in runs[1:]:
        if run[1] == merged[-1][1]:
            merged[-1][0] += run[0]
        else:
            merged.append(run)
    return [(str(run[0]), float(run[1])) for run in merged]


def weighted_chunks(
    prompt: str, tokenize: Callable[[list[str]], list[list[int]]], *, size: int = CHUNK_TOKENS
) -> list[WeightedChunk]:
    """The prompt as chunks of at most ``size`` token ids with their weights (BOS/EOS not included).

    ``tokenize`` turns a list of texts into their token ids without special tokens. A prompt
    without brackets or BREAK is tokenized whole, exactly as before this syntax was read.
    """
    runs = attention_parse(extra_networks_strip(prompt))
    texts = [text for text, weight in runs if weight != BREAK_WEIGHT or text != "BREAK"]
    tokenized = iter(tokenize(texts) if texts else [])
    chunks: list[WeightedChunk] = []
    ids: list[int] = []
    weights: list[float] = []

    def close() -> None:
        nonlocal ids, weights
        chunks.append(WeightedChunk(tuple(ids), tuple(weights)))
        ids, weights = [], []

    for text, weight in runs:
        if text == "BREAK" and weight == BREAK_WEIGHT:
            close()
            continue
        for token in next(tokenized):
            if len(ids) == size:
                close()
            ids.append(token)
            weights.append(weight)
    if ids or not chunks:
        close()
    return chunks


def chunks_encode(
    chunks: Sequence[WeightedChunk],
    *,
    text_encoder: Any,
    bos: int,
    eos: int,
    pad: int,
    length: int,
    device: Any,
) -> Any:
    """CLIP hidden states of the chunks, concatenated: a (1, chunks * length, width) tensor.

    Each chunk is encoded on its own (in one text-encoder call); a weighted one is multiplied
    token by token and rescaled to its unweighted mean, A1111's "Original" emphasis.
    """
    import torch

    rows = []
    for chunk in chunks:
        row = [bos, *chunk.ids, eos]
        rows.append(row + [pad] * (length - len(row)))
    input_ids = torch.tensor(rows, dtype=torch.long, device=device)
    hidden = text_encoder(input_ids)[0]
    if any(chunk.weighted for chunk in chunks):
        parts = []
        for index, chunk in enumerate(chunks):
            z = hidden[index]
            if chunk.weighted:
                factors = [1.0, *chunk.weights, *([1.0] * (length - len(chunk.weights) - 1))]
                multipliers = torch.tensor(factors, dtype=z.dtype, device=z.device)
                original_mean = z.mean()
                z = z * multipliers[:, None]
                new_mean = z.mean()
                # A centred encoder output (a final layer norm without bias, as in the built-in
                # random model) has a mean of rounding noise: dividing by it would give inf/NaN.
                floor = MEAN_FLOOR * float(z.abs().mean())
                if min(abs(float(original_mean)), abs(float(new_mean))) > floor:
                    z = z * (original_mean / new_mean)
            parts.append(z)
        hidden = torch.stack(parts)
    return hidden.reshape(1, -1, hidden.shape[-1])
