"""ControlNet on the resident pipeline: generation steered by a control image (a layout guide).

``StableDiffusionControlNetPipeline.from_pipe`` wraps the loaded pipeline's own modules (UNet,
VAE, text encoder, scheduler, LoRA adapters) and adds the ControlNet: no second copy of the base
weights. The ControlNet is loaded once per engine and kept beside it. Requests are encoded and
batched as ``Engine.generate`` does, with one CPU generator per request, so the same seed and
control image give the same picture batched or alone.

``controlnet_tiny_build`` makes a ControlNet with random weights from the tiny base model's UNet
(tests use it the way they use the tiny base model). Knows nothing of Django.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from generation.engine.runtime import BatchSettings, Engine, EngineError, GeneratedImage, PipePart


@dataclass(frozen=True)
class ControlRequest:
    prompt: str
    negative_prompt: str
    seed: int
    control_image: Any  # PIL.Image.Image


@dataclass(frozen=True)
class ControlSettings:
    scale: float = 1.0  # controlnet_conditioning_scale
    start: float = 0.0  # control_guidance_start, a fraction of the steps
    end: float = 1.0  # control_guidance_end


@dataclass
class LoadedControlNet:
    model: Any  # diffusers.ControlNetModel
    path: Path
    name: str
    sha256: str

    @property
    def a1111_hash(self) -> str:
        """The short hash A1111's ControlNet extension shows in brackets: 8 hex digits."""
        return self.sha256[:8]


def _weights_file(path: Path) -> Path:
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"):
        if (path / name).is_file():
            return path / name
    raise EngineError(f"ControlNet folder {path} has no diffusion_pytorch_model.safetensors.")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def controlnet_load(path: Path, *, device: str, dtype: torch.dtype) -> LoadedControlNet:
    """A ControlNet from a local diffusers folder (offline: the folder carries its config).

    A single file is refused: diffusers reads one only with its config from the model hub."""
    from diffusers import ControlNetModel

    path = Path(path)
    if not path.is_dir():
        raise EngineError(f"The ControlNet {path} is not a diffusers ControlNet folder (IMAGINEER_CONTROLNET).")
    weights = _weights_file(path)
    try:
        model = ControlNetModel.from_pretrained(path, torch_dtype=dtype, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise EngineError(f"Could not load the ControlNet {path}: {exc}") from exc
    model.to(device)
    return LoadedControlNet(model=model, path=path, name=path.name, sha256=_sha256(weights))


_loaded: dict[int, LoadedControlNet] = {}


def controlnet_for(engine: Engine, path: Path) -> LoadedControlNet:
    """The ControlNet at ``path`` for this engine, loaded on first use and kept."""
    cached = _loaded.get(id(engine))
    if cached is None or cached.path != Path(path):
        cached = _loaded[id(engine)] = controlnet_load(Path(path), device=engine.device, dtype=engine.dtype)
    return cached


@torch.inference_mode()
def controlnet_generate(
    engine: Engine,
    controlnet: LoadedControlNet,
    requests: Sequence[ControlRequest],
    batch: BatchSettings,
    control: ControlSettings,
    *,
    on_step: Callable[[int, int, Sequence[int]], None] | None = None,
    batch_size: int | None = None,
) -> list[GeneratedImage]:
    """Pictures for ``requests`` (same order) steered by their control images."""
    from diffusers import StableDiffusionControlNetPipeline

    if not 0 <= control.start < control.end <= 1:
        raise ValueError(f"ControlNet start {control.start} must be below its end {control.end}, both in [0, 1]")
    engine.prepare(batch)
    # Built after the scheduler switch: from_pipe takes the pipeline's current components.
    pipe = StableDiffusionControlNetPipeline.from_pipe(engine.pipe, controlnet=controlnet.model)
    pipe.set_progress_bar_config(disable=True)

    def call(part: PipePart) -> Sequence[Any]:
        images = [requests[i].control_image.convert("RGB").resize((batch.width, batch.height)) for i in part.indices]
        return pipe(
            prompt_embeds=part.prompt_embeds,
            negative_prompt_embeds=part.negative_prompt_embeds,
            image=images,
            width=batch.width,
            height=batch.height,
            num_inference_steps=batch.steps,
            guidance_scale=batch.guidance_scale,
            controlnet_conditioning_scale=control.scale,
            control_guidance_start=control.start,
            control_guidance_end=control.end,
            generator=part.generators,
            callback_on_step_end=part.callback,
        ).images

    return engine.batched(requests, batch, call, steps=batch.steps, on_step=on_step, batch_size=batch_size)


def controlnet_infotext(controlnet: LoadedControlNet, control: ControlSettings, *, resize_mode: str) -> str:
    """The value of A1111's ``ControlNet 0`` infotext key (sd-webui-controlnet's unit summary)."""
    return (
        f"Module: none, Model: {controlnet.name} [{controlnet.a1111_hash}], Weight: {control.scale:g}, "
        f"Resize Mode: {resize_mode}, Low Vram: False, Guidance Start: {control.start:g}, "
        f"Guidance End: {control.end:g}, Pixel Perfect: False, Control Mode: Balanced"
    )


def controlnet_tiny_build(base_model: Path, folder: Path) -> Path:
    """A ControlNet with random weights shaped for the tiny base model (from its UNet); idempotent."""
    from diffusers import ControlNetModel, UNet2DConditionModel

    folder = Path(folder)
    if (folder / "config.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        torch.manual_seed(0)
        unet = UNet2DConditionModel.from_pretrained(base_model, subfolder="unet", local_files_only=True)
        controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 8, 8, 8))
        # from_unet zero-initialises the output convolutions (a trained ControlNet starts so);
        # random ones make the control image visibly change the result in tests.
        with torch.no_grad():
            zeroed = [
                *controlnet.controlnet_down_blocks,
                controlnet.controlnet_mid_block,
                controlnet.controlnet_cond_embedding.conv_out,
            ]
            for block in zeroed:
                block.weight.normal_(0, 0.5)
        controlnet.save_pretrained(staging, safe_serialization=True)
        (staging / "imagineer-tiny.json").write_text(json.dumps({"note": "random weights"}) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
