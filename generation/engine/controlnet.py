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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from generation.engine.prompt_syntax import WeightedChunk
from generation.engine.runtime import BatchSettings, Engine, EngineError, GeneratedImage
from generation.engine.schedulers import DEFAULT_SCHEDULER


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
    if path.is_file():
        return path
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
    """A ControlNet from a local diffusers folder, or a single ``.safetensors`` file (offline)."""
    from diffusers import ControlNetModel

    path = Path(path)
    if not path.exists():
        raise EngineError(f"The ControlNet {path} does not exist (IMAGINEER_CONTROLNET).")
    weights = _weights_file(path)
    try:
        if path.is_dir():
            model = ControlNetModel.from_pretrained(path, torch_dtype=dtype, local_files_only=True)
        else:
            model = ControlNetModel.from_single_file(path, torch_dtype=dtype, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise EngineError(f"Could not load the ControlNet {path}: {exc}") from exc
    model.to(device)
    return LoadedControlNet(
        model=model, path=path, name=path.stem if path.is_file() else path.name, sha256=_sha256(weights)
    )


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
    engine.load()
    if engine.torch_threads:
        torch.set_num_threads(engine.torch_threads)
    engine.apply_loras(batch.loras)
    engine._scheduler_set(batch.scheduler or DEFAULT_SCHEDULER)
    # Built after the scheduler switch: from_pipe takes the pipeline's current components.
    pipe = StableDiffusionControlNetPipeline.from_pipe(engine.pipe, controlnet=controlnet.model)
    pipe.set_progress_bar_config(disable=True)
    size = batch_size or engine.batch_size(batch.width, batch.height)
    # Encoded exactly as Engine.generate does (A1111 attention weights, 75-token chunks, the
    # negative padded to the positive's chunk count), so a prompt means the same in both.
    encoded: list[tuple[list[WeightedChunk], list[WeightedChunk]]] = []
    empty = [WeightedChunk((), ())]
    for request in requests:
        positive, negative = engine.prompt_chunks(request.prompt), engine.prompt_chunks(request.negative_prompt)
        count = max(len(positive), len(negative))
        encoded.append((positive + empty * (count - len(positive)), negative + empty * (count - len(negative))))
    groups: dict[int, list[int]] = {}
    for index, (positive, _negative) in enumerate(encoded):
        groups.setdefault(len(positive), []).append(index)
    results: list[GeneratedImage | None] = [None] * len(requests)
    for chunk_count, indices in groups.items():
        for start in range(0, len(indices), size):
            part = indices[start : start + size]
            started = time.perf_counter()
            prompt_embeds = torch.cat([engine._encode(encoded[i][0]) for i in part])
            negative_embeds = torch.cat([engine._encode(encoded[i][1]) for i in part])
            generators = [torch.Generator("cpu").manual_seed(int(requests[i].seed)) for i in part]
            images = [requests[i].control_image.convert("RGB").resize((batch.width, batch.height)) for i in part]

            def callback(pipe: Any, step: int, timestep: Any, kwargs: dict, part: list[int] = part) -> dict:
                if on_step is not None:
                    on_step(step + 1, batch.steps, part)
                return kwargs

            output = pipe(
                prompt_embeds=prompt_embeds,
                negative_prompt_embeds=negative_embeds,
                image=images,
                width=batch.width,
                height=batch.height,
                num_inference_steps=batch.steps,
                guidance_scale=batch.guidance_scale,
                controlnet_conditioning_scale=control.scale,
                control_guidance_start=control.start,
                control_guidance_end=control.end,
                generator=generators,
                callback_on_step_end=callback,
            )
            seconds = (time.perf_counter() - started) / len(part)
            for offset, index in enumerate(part):
                results[index] = GeneratedImage(
                    image=output.images[offset],
                    seconds=seconds,
                    prompt_chunks=chunk_count,
                    timings={"batch_size": len(part), "seconds_per_image": round(seconds, 4)},
                )
    return results  # type: ignore[return-value]


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
