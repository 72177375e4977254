"""The resident pipeline: load once, switch LoRA stacks with set_adapters, generate in batches.

One ``Engine`` lives for the whole life of a gpu worker process (``generation.worker.engine_get``). Adapters
are loaded once and cached by sha256 (adapter name ``l_<sha[:16]>``); a job switches its
stack with ``set_adapters(names, weights)`` and never reloads the base model.

Prompts are read in A1111's syntax (attention weights, BREAK, ``<lora:...>`` tags cut out;
``generation.engine.prompt_syntax``) and encoded A1111-style: the token ids are split into
75-token chunks, each chunk is wrapped in BOS/EOS and encoded on its own, weighted, and the
hidden states are concatenated. The negative prompt is padded with empty chunks to the same length.
Requests are grouped by that chunk count before batching, so an image does not depend on
which other prompts share its batch; with one CPU generator per prompt, the same seed gives
the same image batched or alone.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from generation.engine.lora_files import LoraFileError, lora_fit_error, lora_inspect
from generation.engine.prompt_syntax import WeightedChunk, chunks_encode, weighted_chunks
from generation.engine.schedulers import DEFAULT_SCHEDULER, SCHEDULERS
from generation.engine.source import ModelSource, model_base, model_base_label

logger = logging.getLogger(__name__)

MAX_CACHED_ADAPTERS = 16
# Rough memory per image at 512x512 in fp16 with classifier-free guidance and SDPA, for auto batch size.
BYTES_PER_512_IMAGE = int(1.25 * 1024**3)


class EngineError(Exception):
    """A problem a user can act on (bad LoRA, bad model); the message says what to do."""


class LoraUnfitError(EngineError):
    pass


class GenerationCancelled(Exception):
    """Raised from the step callback to stop a pipeline call at the next denoising step."""


@dataclass(frozen=True)
class LoraRef:
    name: str
    sha256: str
    path: Path
    weight: float
    base: str = "unknown"

    @property
    def adapter_name(self) -> str:
        return f"l_{self.sha256[:16]}"


@dataclass(frozen=True)
class BatchSettings:
    width: int
    height: int
    steps: int
    guidance_scale: float
    scheduler: str = DEFAULT_SCHEDULER
    loras: tuple[LoraRef, ...] = ()


@dataclass(frozen=True)
class ImageRequest:
    prompt: str
    negative_prompt: str
    seed: int


@dataclass
class GeneratedImage:
    image: Any  # a PIL.Image.Image
    seconds: float
    prompt_chunks: int
    timings: dict = field(default_factory=dict)


def device_resolve(requested: str = "auto") -> str:
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _sdpa_processor():
    from diffusers.models.attention_processor import AttnProcessor2_0

    return AttnProcessor2_0()


def dtype_resolve(requested: str, device: str) -> torch.dtype:
    named = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
    if requested in named:
        return named[requested]
    return torch.float16 if device == "cuda" else torch.float32


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(4 * 1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


class Engine:
    """The pipeline of one model; everything it needs comes in as arguments (no Django here).

    ``generation.worker`` builds the process-wide one from the settings and the Config row.
    """

    def __init__(
        self,
        source: ModelSource,
        *,
        device: str = "auto",
        dtype: str = "auto",
        attention_slicing: bool = False,
        vae_slicing: bool = False,
        batch_size: int = 0,
        torch_threads: int = 0,
        default_scheduler: str = DEFAULT_SCHEDULER,
    ) -> None:
        self.source = source
        self.device = device_resolve(device)
        self.dtype = dtype_resolve(dtype, self.device)
        self.attention_slicing = attention_slicing
        self.vae_slicing = vae_slicing
        self.batch_size_setting = batch_size
        self.torch_threads = torch_threads
        self.default_scheduler = default_scheduler if default_scheduler in SCHEDULERS else DEFAULT_SCHEDULER
        self.pipe: Any = None  # a StableDiffusionPipeline once loaded (diffusers is not type-checked)
        self.base = model_base(self.source)
        self.model_hash = ""
        self.load_seconds = 0.0
        self._adapters: OrderedDict[str, LoraRef] = OrderedDict()
        self._lora_active = False
        self._scheduler_name = ""
        self._scheduler_config: dict[str, Any] | None = None

    # --- loading ---------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self.pipe is not None

    def load(self) -> Engine:
        if self.pipe is not None:
            return self
        from diffusers import StableDiffusionPipeline

        started = time.perf_counter()
        if self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        common = {"dtype": self.dtype, "safety_checker": None, "requires_safety_checker": False}
        source = self.source
        if source.kind == "tiny":
            from generation.engine.tiny import tiny_model_build

            tiny_model_build(Path(source.location))
            pipe = StableDiffusionPipeline.from_pretrained(source.location, local_files_only=True, **common)
            weights: Path | None = Path(source.location) / "unet" / "diffusion_pytorch_model.safetensors"
        elif source.kind == "single_file":
            pipe = StableDiffusionPipeline.from_single_file(
                source.location,
                config=str(source.config_dir),
                local_files_only=True,
                feature_extractor=None,
                **common,
            )
            weights = Path(source.location)
        else:
            pipe = StableDiffusionPipeline.from_pretrained(source.location, local_files_only=True, **common)
            unet_dir = source.config_dir / "unet" if source.config_dir else None
            weights = next(iter(sorted(unet_dir.glob("*.safetensors"))), None) if unet_dir else None
        pipe = pipe.to(self.device)
        pipe.unet.set_attn_processor(_sdpa_processor())
        if self.attention_slicing:
            pipe.enable_attention_slicing()
        if self.vae_slicing:
            pipe.vae.enable_slicing()
        pipe.set_progress_bar_config(disable=True)
        self._scheduler_config = dict(pipe.scheduler.config)
        self.pipe = pipe
        self._scheduler_set(self.default_scheduler)
        # A1111's "Model hash" is the sha256 of the weights; we hash the UNet weights of a folder.
        self.model_hash = _sha256(weights) if weights and Path(weights).is_file() else ""
        self.load_seconds = time.perf_counter() - started
        logger.info(
            "Loaded %s (%s) on %s/%s in %.1fs", source.model_id, source.kind, self.device, self.dtype, self.load_seconds
        )
        return self

    def options_apply(self, options: HardwareOptions) -> None:
        """Switch slicing, attention backend and batch size on the loaded pipeline."""
        if options.attention_slicing != self.attention_slicing:
            if options.attention_slicing:
                self.pipe.enable_attention_slicing()
            else:
                self.pipe.disable_attention_slicing()
                self.pipe.unet.set_attn_processor(_sdpa_processor())
            self.attention_slicing = options.attention_slicing
        if options.vae_slicing != self.vae_slicing:
            if options.vae_slicing:
                self.pipe.vae.enable_slicing()
            else:
                self.pipe.vae.disable_slicing()
            self.vae_slicing = options.vae_slicing
        if options.xformers and not self.attention_slicing:
            try:
                self.pipe.enable_xformers_memory_efficient_attention()
            except (ImportError, ModuleNotFoundError, ValueError, NotImplementedError) as exc:
                # PyTorch's SDPA (already in use) is as fast on current GPUs; xformers is optional.
                logger.warning("xformers requested but unavailable (%s); keeping PyTorch SDPA attention", exc)
        self.batch_size_setting = options.batch_size

    def info(self) -> dict:
        return {
            "model_id": self.source.model_id,
            "model_kind": self.source.kind,
            "model_hash": self.model_hash,
            "is_noise_model": self.source.is_noise,
            "base": self.base,
            "device": self.device,
            "dtype": str(self.dtype).removeprefix("torch."),
            "loaded": self.loaded,
            "attention_slicing": self.attention_slicing,
            "vae_slicing": self.vae_slicing,
        }

    # --- batch size, scheduler, LoRAs -------------------------------------------------------

    def batch_size(self, width: int, height: int) -> int:
        if self.batch_size_setting:
            return self.batch_size_setting
        if self.device == "cuda":
            free, _total = torch.cuda.mem_get_info()
            per_image = BYTES_PER_512_IMAGE * (width * height) / (512 * 512)
            return max(1, min(16, int(free * 0.8 // per_image)))
        return 4

    def _scheduler_set(self, name: str) -> None:
        if name == self._scheduler_name:
            return
        import diffusers

        spec = SCHEDULERS.get(name)
        if spec is None:
            raise EngineError(f"Unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}.")
        scheduler_class = getattr(diffusers, spec.class_name)
        self.pipe.scheduler = scheduler_class.from_config(self._scheduler_config, **spec.options)
        self._scheduler_name = name

    def lora_check(self, ref: LoraRef) -> None:
        """Refuse a LoRA that does not fit the loaded base, before any GPU work."""
        try:
            info = lora_inspect(ref.path)
        except (LoraFileError, OSError) as exc:
            raise LoraUnfitError(f"LoRA {ref.name!r}: {exc}") from None
        problem = lora_fit_error(lora_name=ref.name, lora_base=info.base, model_base=self.base)
        if problem is None and info.cross_attention_dim and self.pipe is not None:
            width = self.pipe.unet.config.cross_attention_dim
            if info.cross_attention_dim != width:
                problem = (
                    f"LoRA {ref.name!r} reads {info.cross_attention_dim}-wide text embeddings "
                    f"({model_base_label(info.base)}) but the loaded model uses {width} "
                    f"({model_base_label(self.base)})."
                )
        if problem:
            raise LoraUnfitError(problem)

    def apply_loras(self, loras: Sequence[LoraRef]) -> None:
        pipe = self.load().pipe
        for ref in loras:
            if ref.adapter_name in self._adapters:
                self._adapters.move_to_end(ref.adapter_name)
                continue
            self.lora_check(ref)
            try:
                pipe.load_lora_weights(str(ref.path), adapter_name=ref.adapter_name)
            except Exception as exc:
                # Leave the pipeline as it was: no half-registered adapter.
                with suppress(Exception):
                    pipe.delete_adapters(ref.adapter_name)
                self._lora_active = bool(self._adapters)
                raise EngineError(f"LoRA {ref.name!r} could not be loaded into {self.source.model_id}: {exc}") from exc
            self._adapters[ref.adapter_name] = ref
            self._evict(keep={item.adapter_name for item in loras})
        if loras:
            pipe.enable_lora()
            pipe.set_adapters([ref.adapter_name for ref in loras], adapter_weights=[ref.weight for ref in loras])
            self._lora_active = True
        elif self._adapters and self._lora_active:
            pipe.disable_lora()
            self._lora_active = False

    def _evict(self, *, keep: set[str]) -> None:
        while len(self._adapters) > MAX_CACHED_ADAPTERS:
            victim = next((name for name in self._adapters if name not in keep), None)
            if victim is None:
                return
            self.pipe.delete_adapters(victim)
            del self._adapters[victim]

    # --- prompts ----------------------------------------------------------------------------

    def prompt_chunks(self, text: str) -> list[WeightedChunk]:
        """The prompt in A1111's syntax as weighted 75-token chunks (``generation.engine.prompt_syntax``)."""
        tokenizer = self.pipe.tokenizer

        def tokenize(texts: list[str]) -> list[list[int]]:
            return tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False).input_ids

        return weighted_chunks(text, tokenize, size=tokenizer.model_max_length - 2)

    def _encode(self, chunks: list[WeightedChunk]) -> torch.Tensor:
        tokenizer = self.pipe.tokenizer
        hidden = chunks_encode(
            chunks,
            text_encoder=self.pipe.text_encoder,
            bos=tokenizer.bos_token_id,
            eos=tokenizer.eos_token_id,
            pad=tokenizer.pad_token_id,
            length=tokenizer.model_max_length,
            device=self.device,
        )
        return hidden.to(self.dtype)

    # --- generation -------------------------------------------------------------------------

    def prepare(self, batch: BatchSettings) -> None:
        """Load, and set the LoRA stack and scheduler ``batch`` asks for (before building a from_pipe)."""
        self.load()
        if self.torch_threads:
            # OpenMP's thread count is per calling thread: the engine may have been loaded by another one.
            torch.set_num_threads(self.torch_threads)
        self.apply_loras(batch.loras)
        self._scheduler_set(batch.scheduler or DEFAULT_SCHEDULER)

    def batched(
        self,
        requests: Sequence[Any],
        batch: BatchSettings,
        call: Callable[[PipePart], Sequence[Any]],
        *,
        steps: int,
        on_step: Callable[[int, int, Sequence[int]], None] | None = None,
        batch_size: int | None = None,
    ) -> list[GeneratedImage]:
        """The one batching loop of every pipeline (text-to-image, img2img, ControlNet).

        ``requests`` have ``prompt``, ``negative_prompt`` and ``seed``. Prompts are encoded as
        A1111 does (attention weights, 75-token chunks, the negative padded to the positive's
        chunk count) and batched only with prompts of the same chunk count; each request gets
        its own CPU generator, so an image is the same batched or alone. ``call`` runs the
        pipeline on one part and returns its images; ``on_step(step, steps, indices)`` may raise
        GenerationCancelled."""
        size = batch_size or self.batch_size(batch.width, batch.height)
        empty = [WeightedChunk((), ())]
        encoded = []
        for request in requests:
            positive, negative = self.prompt_chunks(request.prompt), self.prompt_chunks(request.negative_prompt)
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

                def callback(pipe: Any, step: int, timestep: Any, kwargs: dict, part: list[int] = part) -> dict:
                    if on_step is not None:
                        on_step(step + 1, steps, part)
                    return kwargs

                images = call(
                    PipePart(
                        indices=part,
                        prompt_embeds=torch.cat([self._encode(encoded[i][0]) for i in part]),
                        negative_prompt_embeds=torch.cat([self._encode(encoded[i][1]) for i in part]),
                        generators=[torch.Generator("cpu").manual_seed(int(requests[i].seed)) for i in part],
                        callback=callback,
                    )
                )
                seconds = (time.perf_counter() - started) / len(part)
                for offset, index in enumerate(part):
                    results[index] = GeneratedImage(
                        image=images[offset],
                        seconds=seconds,
                        prompt_chunks=chunk_count,
                        timings={"batch_size": len(part), "seconds_per_image": round(seconds, 4)},
                    )
        return results  # type: ignore[return-value]

    @torch.inference_mode()
    def generate(
        self,
        requests: Sequence[ImageRequest],
        batch: BatchSettings,
        *,
        on_step: Callable[[int, int, Sequence[int]], None] | None = None,
        batch_size: int | None = None,
    ) -> list[GeneratedImage]:
        """Images for ``requests`` (same order). ``on_step(step, steps, indices)`` may raise GenerationCancelled."""
        self.prepare(batch)

        def call(part: PipePart) -> Sequence[Any]:
            return self.pipe(
                prompt_embeds=part.prompt_embeds,
                negative_prompt_embeds=part.negative_prompt_embeds,
                width=batch.width,
                height=batch.height,
                num_inference_steps=batch.steps,
                guidance_scale=batch.guidance_scale,
                generator=part.generators,
                callback_on_step_end=part.callback,
                output_type="pil",
            ).images

        return self.batched(requests, batch, call, steps=batch.steps, on_step=on_step, batch_size=batch_size)


@dataclass(frozen=True)
class PipePart:
    """One pipeline call's share of a batch: which requests, their embeddings and generators."""

    indices: list[int]
    prompt_embeds: Any  # torch.Tensor
    negative_prompt_embeds: Any
    generators: list[Any]
    callback: Callable[..., dict]


@dataclass(frozen=True)
class HardwareOptions:
    """Where and how the pipeline runs; ``generation.worker.hardware_options`` reads them."""

    device: str
    dtype: str
    attention_slicing: bool
    vae_slicing: bool
    xformers: bool
    batch_size: int
    torch_threads: int = 0


def engine_build(
    source: ModelSource, options: HardwareOptions, *, default_scheduler: str = DEFAULT_SCHEDULER
) -> Engine:
    engine = Engine(
        source,
        device=options.device,
        dtype=options.dtype,
        attention_slicing=options.attention_slicing,
        vae_slicing=options.vae_slicing,
        batch_size=options.batch_size,
        torch_threads=options.torch_threads,
        default_scheduler=default_scheduler,
    ).load()
    engine.options_apply(options)
    return engine


def library_versions() -> dict[str, str]:
    import diffusers
    import peft
    import transformers

    return {
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
    }
