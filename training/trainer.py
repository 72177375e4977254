"""The LoRA trainer: diffusers + PEFT, UNet attention layers only, everything else frozen.

The only training module that imports torch, diffusers and peft; it runs inside the gpu
worker (or the ``train_lora`` command) and knows nothing of the database: the caller gives it
the base pipeline's components, the images and captions, the parameters and hooks that report
progress and ask whether to stop.

Every optimizer step seeds the global and data RNGs from (seed, step), so a run that is
cancelled and resumed from a checkpoint draws the same batches, noise and timesteps as one
that was never interrupted.
"""

from __future__ import annotations

import math
import os
import random
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, StableDiffusionPipeline
from diffusers.training_utils import cast_training_params
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from PIL import Image as PILImage
from PIL import ImageOps
from safetensors.torch import load_file, save_file

from training import kohya

TARGET_MODULES = ["to_q", "to_k", "to_v", "to_out.0"]
SAMPLE_STEPS = 20
SAMPLE_GUIDANCE = 7.5
GRADIENT_CLIP = 1.0


@dataclass(frozen=True)
class TrainItem:
    path: Path
    caption: str


@dataclass(frozen=True)
class TrainConfig:
    learning_rate: float
    rank: int
    alpha: float
    dropout: float
    max_steps: int
    save_every: int
    resolution: int
    batch_size: int
    gradient_accumulation: int
    seed: int
    mixed_precision: bool
    sample_prompts: list[str]
    output_dir: Path
    # kohya-style ss_* keys that do not depend on the step (name, dataset, base model ...).
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class Checkpoint:
    step: int
    path: Path
    samples: list[Path]


@dataclass
class TrainHooks:
    """Callbacks into the caller. ``on_step`` returns True to stop (cancel) after that step."""

    on_phase: Callable[[str], None] = lambda phase: None
    on_step: Callable[[int, float], bool] = lambda step, loss: False
    on_checkpoint: Callable[[Checkpoint], None] = lambda checkpoint: None


@dataclass(frozen=True)
class TrainSession:
    """What the checkpoints of one training session share (kohya's session metadata)."""

    session_id: int
    started_at: float
    precision: str  # "fp16" or "no", as kohya's ss_mixed_precision
    dataset: dict[str, str]


@dataclass
class TrainResult:
    step: int
    stopped: bool
    last_checkpoint: Checkpoint | None


def device_pick(preference: str = "auto") -> torch.device:
    if preference == "cpu":
        return torch.device("cpu")
    if preference in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    if preference in ("auto", "mps") and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


# --- data ------------------------------------------------------------------------------------


def buckets_make(resolution: int) -> list[tuple[int, int]]:
    """(width, height) pairs of about resolution² pixels, sides multiples of the VAE-friendly step.

    Aspect-aware bucketing: a portrait card trains as a portrait, not as a centre square.
    """
    step = 64 if resolution >= 256 else 8
    buckets = set()
    for width in range(max(step, resolution // 2 // step * step), resolution * 2 + 1, step):
        height = resolution * resolution // width // step * step
        if resolution // 2 <= height <= resolution * 2 and height >= step:
            buckets.add((width, height))
    buckets.add((resolution, resolution))
    return sorted(buckets)


def bucket_for(width: int, height: int, buckets: list[tuple[int, int]]) -> tuple[int, int]:
    aspect = math.log(width / height)
    return min(buckets, key=lambda size: abs(math.log(size[0] / size[1]) - aspect))


def image_load_rgb(path: Path) -> PILImage.Image:
    """Open, apply EXIF rotation and convert to RGB; transparency is flattened onto white."""
    with PILImage.open(path) as source:
        image = ImageOps.exif_transpose(source)
        image.load()
    if image.mode in ("RGBA", "LA", "PA", "P", "RGBa"):
        image = image.convert("RGBA")
        background = PILImage.new("RGBA", image.size, (255, 255, 255, 255))
        image = PILImage.alpha_composite(background, image)
    return image.convert("RGB")


def image_fit(image: PILImage.Image, size: tuple[int, int]) -> PILImage.Image:
    """Resize to cover ``size`` and crop the centre."""
    return ImageOps.fit(image, size, method=PILImage.Resampling.LANCZOS, centering=(0.5, 0.5))


def image_tensor(image: PILImage.Image) -> torch.Tensor:
    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    tensor = data.view(image.height, image.width, 3).permute(2, 0, 1).float()
    return tensor / 127.5 - 1.0


# --- checkpoints -------------------------------------------------------------------------------


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({name: tensor.detach().contiguous().cpu() for name, tensor in tensors.items()}, tmp_name, metadata)
        os.replace(tmp_name, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def lora_state_dict(unet: Any, alpha: float) -> dict[str, torch.Tensor]:
    """The adapter weights in kohya's layout (``lora_unet_*`` + ``.alpha``), float32."""
    return kohya.peft_to_kohya(get_peft_model_state_dict(unet), alpha=alpha)


def checkpoint_metadata(config: TrainConfig, session: TrainSession, *, step: int) -> dict[str, str]:
    """The metadata sd-scripts' train_network.py writes for a LoRA, every value a string."""
    batches_per_epoch, num_epochs = kohya.epochs(
        images=int(session.dataset["ss_num_train_images"]),
        batch_size=config.batch_size,
        gradient_accumulation=config.gradient_accumulation,
        max_steps=config.max_steps,
    )
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / config.gradient_accumulation))
    metadata: dict[str, Any] = {
        "ss_session_id": session.session_id,
        "ss_training_started_at": session.started_at,
        "ss_learning_rate": config.learning_rate,
        "ss_text_encoder_lr": 0.0,
        "ss_unet_lr": config.learning_rate,
        "ss_num_reg_images": 0,
        "ss_num_batches_per_epoch": batches_per_epoch,
        "ss_num_epochs": num_epochs,
        "ss_gradient_checkpointing": False,
        "ss_gradient_accumulation_steps": config.gradient_accumulation,
        "ss_max_train_steps": config.max_steps,
        "ss_lr_warmup_steps": 0,
        "ss_lr_scheduler": "constant",
        "ss_network_module": "networks.lora",
        "ss_network_dim": config.rank,
        "ss_network_alpha": float(config.alpha),
        "ss_network_dropout": float(config.dropout),
        "ss_mixed_precision": session.precision,
        "ss_full_fp16": False,
        "ss_v2": False,
        "ss_base_model_version": "sd_v1",
        # No CLIP layers skipped (kohya's None); captions are truncated at CLIP's 75 tokens.
        "ss_clip_skip": None,
        "ss_max_token_length": None,
        "ss_cache_latents": True,
        "ss_seed": config.seed,
        "ss_lowram": False,
        "ss_noise_offset": None,
        "ss_zero_terminal_snr": False,
        "ss_optimizer": "torch.optim.adamw.AdamW(weight_decay=0.01)",
        "ss_max_grad_norm": GRADIENT_CLIP,
        "ss_caption_dropout_rate": 0.0,
        "ss_caption_dropout_every_n_epochs": 0,
        "ss_caption_tag_dropout_rate": 0.0,
        "ss_prior_loss_weight": 1.0,
        "ss_min_snr_gamma": None,
        "ss_loss_type": "l2",
        "ss_batch_size_per_device": config.batch_size,
        "ss_total_batch_size": config.batch_size * config.gradient_accumulation,
        "ss_resolution": (config.resolution, config.resolution),
        "ss_color_aug": False,
        "ss_flip_aug": False,
        "ss_random_crop": False,
        "ss_shuffle_caption": False,
        "ss_enable_bucket": True,
        "ss_bucket_no_upscale": False,
        "ss_keep_tokens": 0,
        "ss_reg_dataset_dirs": "{}",
        "ss_network_args": {"target_modules": ",".join(TARGET_MODULES)},
        "ss_steps": step,
        "ss_epoch": min(num_epochs, max(1, math.ceil(step / steps_per_epoch))),
        "ss_training_finished_at": time.time(),
        **session.dataset,
        **kohya.modelspec_metadata(
            title=config.metadata.get("ss_output_name", "LoRA"),
            resolution=config.resolution,
            started_at=session.started_at,
        ),
    }
    metadata = kohya.as_strings(metadata)
    metadata.update(config.metadata)
    return metadata


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """AdamW state as flat tensors (no pickles on disk), plus its step counts as metadata."""
    tensors: dict[str, torch.Tensor] = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value if value.ndim else value.reshape(1)
    return tensors, {"format": "pt", "kind": "imagineer-optimizer"}


def _optimizer_restore(optimizer: torch.optim.Optimizer, path: Path) -> None:
    tensors = load_file(path)
    state_dict = optimizer.state_dict()
    restored: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        index, key = name.split(".", 1)
        restored.setdefault(int(index), {})[key] = tensor.reshape(()) if key == "step" else tensor
    state_dict["state"] = restored
    optimizer.load_state_dict(state_dict)


def optimizer_state_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.stem + ".optimizer.safetensors")


# --- training ------------------------------------------------------------------------------------


def lora_train(
    *,
    pipeline: StableDiffusionPipeline,
    items: list[TrainItem],
    config: TrainConfig,
    hooks: TrainHooks,
    resume_from: Path | None = None,
    resume_step: int = 0,
    device: torch.device | None = None,
) -> TrainResult:
    """Train from step ``resume_step`` to ``config.max_steps`` (or until a hook says stop).

    ``pipeline`` is a base pipeline this function may modify: it adds a LoRA adapter to its
    UNet and removes it again before returning.
    """
    device = device or device_pick()
    use_amp = config.mixed_precision and device.type == "cuda"
    weight_dtype = torch.float16 if use_amp else torch.float32

    unet, vae, text_encoder, tokenizer = pipeline.unet, pipeline.vae, pipeline.text_encoder, pipeline.tokenizer
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
        module.to(device, dtype=weight_dtype)
    vae.eval()
    text_encoder.eval()
    noise_scheduler = DDPMScheduler.from_config(pipeline.scheduler.config)

    hooks.on_phase("preparing")
    latents, embeddings, bucket_of, sizes = _dataset_encode(
        items, config, vae, text_encoder, tokenizer, device, weight_dtype
    )
    session = _session(config, sizes, bucket_of, precision="fp16" if use_amp else "no")

    lora_config = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        init_lora_weights="gaussian",
        target_modules=TARGET_MODULES,
    )
    unet.add_adapter(lora_config)
    try:
        if use_amp:
            cast_training_params(unet, dtype=torch.float32)
        parameters = [parameter for parameter in unet.parameters() if parameter.requires_grad]
        optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=1e-2)
        last_checkpoint = None
        if resume_from is not None:
            modules = [name for name, _module in unet.named_modules()]
            set_peft_model_state_dict(unet, kohya.kohya_to_peft(load_file(resume_from), modules))
            if optimizer_state_path(resume_from).exists():
                _optimizer_restore(optimizer, optimizer_state_path(resume_from))
            last_checkpoint = Checkpoint(step=resume_step, path=resume_from, samples=[])
        scaler = torch.amp.GradScaler("cuda") if use_amp else None

        hooks.on_phase("training")
        unet.train()
        step, stopped = resume_step, False
        by_bucket: dict[tuple[int, int], list[int]] = {}
        for index, bucket in enumerate(bucket_of):
            by_bucket.setdefault(bucket, []).append(index)
        bucket_keys = sorted(by_bucket)
        while step < config.max_steps and not stopped:
            step += 1
            torch.manual_seed(config.seed * 1_000_003 + step)
            generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
            total = 0.0
            for _ in range(config.gradient_accumulation):
                loss = _micro_step(
                    unet,
                    noise_scheduler,
                    latents,
                    embeddings,
                    by_bucket,
                    bucket_keys,
                    config,
                    generator,
                    device,
                    use_amp,
                )
                scaled = loss / config.gradient_accumulation
                (scaler.scale(scaled) if scaler else scaled).backward()
                total += loss.item()
            if scaler:
                scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(parameters, GRADIENT_CLIP)
            if scaler:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            loss_value = total / config.gradient_accumulation
            if not math.isfinite(loss_value):
                raise FloatingPointError(
                    f"The loss became {loss_value} at step {step}; lower the learning rate or turn off mixed precision."
                )
            stopped = hooks.on_step(step, loss_value)
            if step % config.save_every == 0 or step == config.max_steps or stopped:
                # A cancelled run saves where it stopped (without samples) so resume loses nothing.
                last_checkpoint = _checkpoint_save(
                    pipeline, optimizer, config, session, step, device, with_samples=not stopped
                )
                hooks.on_checkpoint(last_checkpoint)
                unet.train()
        return TrainResult(step=step, stopped=stopped, last_checkpoint=last_checkpoint)
    finally:
        unet.delete_adapters(["default"])
        unet.eval()


def _session(
    config: TrainConfig, sizes: list[tuple[int, int]], bucket_of: list[tuple[int, int]], *, precision: str
) -> TrainSession:
    """kohya's per-session metadata: a random session id, the start time, the dataset's buckets."""
    buckets = [size for bucket in bucket_of for size in bucket]
    return TrainSession(
        session_id=random.SystemRandom().randint(0, 2**32),
        started_at=time.time(),
        precision=precision,
        dataset=kohya.as_strings(
            {
                "ss_num_train_images": len(sizes),
                "ss_min_bucket_reso": min(buckets),
                "ss_max_bucket_reso": max(buckets),
                "ss_bucket_info": kohya.bucket_info(sizes, bucket_of),
            }
        ),
    )


def _dataset_encode(
    items: list[TrainItem],
    config: TrainConfig,
    vae: Any,
    text_encoder: Any,
    tokenizer: Any,
    device: torch.device,
    dtype: torch.dtype,
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[tuple[int, int]], list[tuple[int, int]]]:
    """VAE latent distributions (mean, std) and text embeddings, computed once per image; buckets, sizes."""
    buckets = buckets_make(config.resolution)
    latents, embeddings, bucket_of, sizes = [], [], [], []
    scaling = vae.config.scaling_factor
    with torch.no_grad():
        for item in items:
            image = image_load_rgb(item.path)
            bucket = bucket_for(image.width, image.height, buckets)
            pixels = image_tensor(image_fit(image, bucket)).unsqueeze(0).to(device, dtype=dtype)
            distribution = vae.encode(pixels).latent_dist
            latents.append(torch.stack([distribution.mean[0] * scaling, distribution.std[0] * scaling]).float())
            tokens = tokenizer(
                item.caption,
                padding="max_length",
                max_length=tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids.to(device)
            embeddings.append(text_encoder(tokens)[0][0])
            bucket_of.append(bucket)
            sizes.append((image.width, image.height))
    return latents, embeddings, bucket_of, sizes


def _micro_step(
    unet: Any,
    noise_scheduler: DDPMScheduler,
    latents: list[torch.Tensor],
    embeddings: list[torch.Tensor],
    by_bucket: dict[tuple[int, int], list[int]],
    bucket_keys: list[tuple[int, int]],
    config: TrainConfig,
    generator: torch.Generator,
    device: torch.device,
    use_amp: bool,
) -> torch.Tensor:
    # A batch comes from one bucket (same latent size); buckets are drawn by their share of images.
    weights = torch.tensor([len(by_bucket[key]) for key in bucket_keys], dtype=torch.float)
    bucket = bucket_keys[int(torch.multinomial(weights, 1, generator=generator))]
    members = by_bucket[bucket]
    picks = torch.randint(len(members), (config.batch_size,), generator=generator).tolist()
    indices = [members[pick] for pick in picks]
    stats = torch.stack([latents[index] for index in indices])
    mean, std = stats[:, 0], stats[:, 1]
    sample = mean + std * torch.randn(mean.shape, generator=generator).to(device)
    noise = torch.randn(sample.shape, generator=generator).to(device)
    timesteps = torch.randint(noise_scheduler.config.num_train_timesteps, (len(indices),), generator=generator).to(
        device
    )
    noisy = noise_scheduler.add_noise(sample, noise, timesteps)
    if noise_scheduler.config.prediction_type == "v_prediction":
        target = noise_scheduler.get_velocity(sample, noise, timesteps)
    else:
        target = noise
    hidden = torch.stack([embeddings[index] for index in indices])
    autocast = torch.autocast("cuda", dtype=torch.float16) if use_amp else nullcontext()
    with autocast:
        prediction = unet(noisy.to(unet.dtype), timesteps, hidden.to(unet.dtype)).sample
    return F.mse_loss(prediction.float(), target.float(), reduction="mean")


def _checkpoint_save(
    pipeline: StableDiffusionPipeline,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    session: TrainSession,
    step: int,
    device: torch.device,
    *,
    with_samples: bool,
) -> Checkpoint:
    path = config.output_dir / f"step-{step:06d}.safetensors"
    metadata = checkpoint_metadata(config, session, step=step)
    tensors = lora_state_dict(pipeline.unet, config.alpha)
    metadata["sshs_model_hash"], metadata["sshs_legacy_hash"] = kohya.safetensors_hashes(tensors, metadata)
    _atomic_save(tensors, path, metadata)
    tensors, optimizer_metadata = _optimizer_tensors(optimizer)
    _atomic_save(tensors, optimizer_state_path(path), optimizer_metadata)
    samples = _samples_render(pipeline, config, step, device) if with_samples else []
    return Checkpoint(step=step, path=path, samples=samples)


def _samples_render(
    pipeline: StableDiffusionPipeline, config: TrainConfig, step: int, device: torch.device
) -> list[Path]:
    pipeline.unet.eval()
    paths = []
    for index, prompt in enumerate(config.sample_prompts):
        generator = torch.Generator(device="cpu").manual_seed(config.seed + index)
        with torch.no_grad():
            image = pipeline(
                prompt,
                width=config.resolution,
                height=config.resolution,
                num_inference_steps=SAMPLE_STEPS,
                guidance_scale=SAMPLE_GUIDANCE,
                generator=generator,
            ).images[0]
        path = config.output_dir / f"step-{step:06d}-sample-{index + 1}.png"
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            image.save(handle, format="PNG")
        os.replace(tmp_name, path)
        paths.append(path)
    return paths
