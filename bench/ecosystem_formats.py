"""What the engine makes of A1111 prompt syntax and of LoRA files from other tools: before and after.

    .venv/bin/python bench/ecosystem_formats.py [--before DIR]

Each prompt goes through the engine's prompt chunking with SD1.5's real tokenizer (from
``data/sd15-config``) and is shown as the text CLIP reads, with the weights; each LoRA file
(written here, zero tensors with the names and shapes each tool writes) goes through the
engine's LoRA reader and is shown as the base it gets or the message it is refused with.
``--before DIR`` probes another checkout of the project the same way (e.g. main's tree:
``git archive main | tar -x -C DIR``) in a subprocess and prints the two side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

PROMPTS = [
    "a (red:1.3) fox",
    "a (red) fox, [blurry]",
    "a \\(literal\\) fox",
    "a fox BREAK a whale",
    "a fox <lora:ink wash:0.7>",
    "a [cat:dog:0.5] on a mat",
    "a [cat|dog] on a mat",
]
ATTN = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
CONV = "lora_unet_down_blocks_0_resnets_0_conv1"
TE = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
FILES: dict[str, tuple[dict[str, list[int]], dict[str, str]]] = {
    "kohya LoRA (attention)": ({f"{ATTN}.lora_down.weight": [4, 768], f"{ATTN}.lora_up.weight": [320, 4]}, {}),
    "LyCORIS LoHa": ({f"{ATTN}.hada_w1_a": [320, 4], f"{ATTN}.hada_w1_b": [4, 768]}, {}),
    "LyCORIS LoKr": ({f"{ATTN}.lokr_w1": [4, 4], f"{ATTN}.lokr_w2": [80, 192]}, {}),
    "text-encoder-only LoRA": ({f"{TE}.lora_down.weight": [4, 768], f"{TE}.lora_up.weight": [768, 4]}, {}),
    "conv-only LoCon, ss_base_model_version=sd_v1": (
        {f"{CONV}.lora_down.weight": [4, 320, 3, 3], f"{CONV}.lora_up.weight": [320, 4, 1, 1]},
        {"ss_base_model_version": "sd_v1"},
    ),
    "old diffusers text-encoder LoRA (lora_linear_layer)": (
        {"text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.down.weight": [4, 768]},
        {},
    ),
    "textual-inversion embedding": ({"emb_params": [2, 768]}, {}),
    "full SD checkpoint": ({"model.diffusion_model.input_blocks.0.0.weight": [320, 4, 3, 3]}, {}),
    "FLUX.1 LoRA": ({"lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": [4, 3072]}, {}),
}


def probe() -> dict[str, dict[str, str]]:
    """This tree's engine on every prompt and file (run inside the tree being probed)."""
    sys.path.insert(0, os.getcwd())
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPTokenizer

    from generation.engine.lora_files import lora_inspect
    from generation.engine.runtime import Engine

    tokenizer = CLIPTokenizer.from_pretrained(str(Path("data/sd15-config/tokenizer")))
    fake: Any = SimpleNamespace(pipe=SimpleNamespace(tokenizer=tokenizer))
    prompts = {}
    for prompt in PROMPTS:
        try:
            from generation.engine.prompt_syntax import prompt_check

            prompt_check(prompt)
        except ImportError:
            pass
        except ValueError as exc:
            prompts[prompt] = f"refused: {str(exc)[:70]}"
            continue
        # Before prompt syntax, a chunk was a list of ids; since, a WeightedChunk.
        chunks: list[Any] = list(Engine.prompt_chunks(fake, prompt))
        shown = []
        for chunk in chunks:
            ids = list(getattr(chunk, "ids", chunk))
            weights = list(getattr(chunk, "weights", [1.0] * len(ids)))
            words = []
            for token, weight in zip(ids, weights, strict=True):
                word = tokenizer.convert_ids_to_tokens(token).replace("</w>", "")
                words.append(word if weight == 1.0 else f"{word}×{weight:.3g}")
            shown.append(" ".join(words))
        prompts[prompt] = "CLIP reads: " + "; next chunk: ".join(shown)
    files = {}
    with tempfile.TemporaryDirectory() as folder:
        for label, (tensors, metadata) in FILES.items():
            path = Path(folder) / "file.safetensors"
            save_file({name: torch.zeros(shape) for name, shape in tensors.items()}, str(path), metadata or None)
            try:
                files[label] = f"base {lora_inspect(path).base}"
            except ValueError as exc:
                files[label] = f"refused: {str(exc).removeprefix('file.safetensors ')[:80]}"
    return {"prompts": prompts, "files": files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="another checkout of the project to compare with")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe()))
        return

    def run(tree: Path) -> dict[str, dict[str, str]]:
        output = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "ecosystem_formats.py"), "--probe"],
            cwd=tree,
            env={**os.environ, "PYTHONPATH": str(tree)},
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return json.loads(output.strip().splitlines()[-1])

    after = run(ROOT)
    before = run(args.before.resolve()) if args.before else None
    for section, title in (("prompts", "prompt"), ("files", "LoRA file")):
        print(f"\n| {title} | " + ("before | after |" if before else "result |"))
        print("| --- | --- |" + (" --- |" if before else ""))
        for key, value in after[section].items():
            cells = [before[section].get(key, "-"), value] if before else [value]
            print(f"| `{key}` | " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")


if __name__ == "__main__":
    main()
