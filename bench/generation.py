"""Generation benchmark: the original's process-per-image vs our resident engine vs our full path.

    DATABASE_URL=postgres://... REDIS_URL=redis://127.0.0.1:6379/N .venv/bin/python bench/generation.py
    [--n 24] [--size 128] [--steps 20] [--batch-size 4] [--threads 1] [--full-size] [--batch-sizes 1,4,8,16]

Three ways, same prompts (from the zodiac template), same seeds, same two-LoRA stack:
  (a) original: a new Python process per image that imports torch, loads the pipeline and the
      LoRAs from disk, generates one image and writes PNG + JSON (what examples/generate.py did);
  (b) engine:   our Engine in this process, loaded once, prompts batched (no files, no database);
  (c) full:     run_start -> Redis -> a real Celery gpu worker -> PNG + sidecar files + rows,
      timed from run_start until the run is completed (the worker has its engine loaded already).
Prints images/s for each and the ratios. Uses a temporary MEDIA_ROOT and removes its rows.
--full-size builds a random-weight model with real SD1.5 sizes (a step costs the same whatever
the weights are); --batch-sizes times (b) at several batch sizes (meant for a GPU: 512x512, 25 steps).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def original_one(spec: dict) -> None:
    """One image the original way: fresh process, load everything, generate, save. Mirrors generate.py."""
    import torch
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    pipe = StableDiffusionPipeline.from_pretrained(spec["model"], dtype=dtype, safety_checker=None)
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    names = []
    for path in spec["loras"]:
        name = Path(path).stem
        pipe.load_lora_weights(path, adapter_name=name)
        names.append(name)
    if names:
        pipe.set_adapters(names, adapter_weights=spec["weights"])
    image = pipe(
        spec["prompt"][:300],  # the original truncated at 77 tokens anyway
        negative_prompt=spec["negative"],
        width=spec["size"],
        height=spec["size"],
        num_inference_steps=spec["steps"],
        guidance_scale=spec["guidance"],
        generator=torch.Generator(device).manual_seed(spec["seed"]),
    ).images[0]
    output = Path(spec["output"])
    image.save(output)
    output.with_suffix(".json").write_text(json.dumps(spec))


def fullsize_model_build(folder: Path) -> Path:
    """Random weights, real SD1.5 shapes (UNet 860M, VAE 84M, CLIP ViT-L text encoder)."""
    import torch
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    if (folder / "model_index.json").exists():
        return folder
    config = ROOT / "data" / "sd15-config"
    torch.manual_seed(0)
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL.from_config(AutoencoderKL.load_config(config / "vae")),
        text_encoder=CLIPTextModel(CLIPTextConfig.from_pretrained(config / "text_encoder")),
        tokenizer=CLIPTokenizer.from_pretrained(config / "tokenizer"),
        unet=UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(config / "unet")),
        scheduler=DPMSolverMultistepScheduler.from_pretrained(config, subfolder="scheduler"),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.to(torch.float16).save_pretrained(folder, safe_serialization=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=24, help="images per way (default 24)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--batch-sizes", default="", help="also time (b) at these batch sizes, e.g. 1,4,8,16")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads everywhere (0: torch default)")
    parser.add_argument("--full-size", action="store_true", help="random-weight model of real SD1.5 size")
    parser.add_argument("--repeat", type=int, default=2, help="best of N for (b) and (c)")
    parser.add_argument("--skip-original", action="store_true")
    parser.add_argument("--original-one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.original_one:
        original_one(json.loads(args.original_one))
        return

    work = Path(tempfile.mkdtemp(prefix="imagineer-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagineer.settings")
    os.environ["MEDIA_ROOT"] = str(work / "media")
    os.environ["LORA_ROOT"] = str(work / "media" / "loras")
    os.environ["IMAGINEER_TORCH_THREADS"] = str(args.threads)
    os.environ["IMAGINEER_BATCH_SIZE"] = str(args.batch_size)
    os.environ.setdefault("IMAGINEER_TINY_MODEL_DIR", str(ROOT / "var" / "models" / "tiny-sd15-v2"))
    if args.full_size:
        os.environ["IMAGINEER_MODEL"] = str(work / "sd15-random")
        print("Building a random-weight SD1.5-size model (slow on a CPU)...", flush=True)
        import django

        django.setup()
        fullsize_model_build(Path(os.environ["IMAGINEER_MODEL"]))
    import django

    django.setup()
    import torch
    from django.conf import settings
    from django.core.management import call_command

    if not settings.REDIS_URL:
        sys.exit("Set REDIS_URL (and DATABASE_URL): way (c) needs the broker and a worker.")
    call_command("migrate", verbosity=0)
    if args.threads:
        torch.set_num_threads(args.threads)

    from albums.models import Album
    from generation.engine.lora_make import lora_make_random
    from generation.engine.runtime import BatchSettings, Engine, ImageRequest
    from generation.engine.tiny import tiny_model_build
    from generation.model_config import model_source
    from generation.models import BatchGenerationRun, BatchTemplate, EngineWorker
    from generation.services.builtin import DATA_DIR
    from generation.services.loras import lora_register
    from generation.services.runs import run_start
    from generation.services.templates import csv_parse, template_save
    from imagineer.testing import wait_for, worker_start

    if not args.full_size:
        tiny_model_build(settings.IMAGINEER_TINY_MODEL_DIR)
    engine = Engine(model_source(), batch_size=args.batch_size, torch_threads=args.threads).load()
    print(
        f"model {engine.source.model_id} on {engine.device}/{engine.dtype}, {args.n} images {args.size}x{args.size}, "
        f"{args.steps} steps, batch {args.batch_size}, torch threads {torch.get_num_threads()}",
        flush=True,
    )

    # The same two-LoRA stack for every way.
    lora_dir = Path(settings.LORA_ROOT)
    paths = [lora_make_random(engine.pipe, lora_dir / f"bench-{i}.safetensors", seed=i) for i in (1, 2)]
    loras = [lora_register(path=path, name=f"bench-{i}-{os.getpid()}") for i, path in enumerate(paths, 1)]
    weights = [0.6, 0.3]

    zodiac = csv_parse((DATA_DIR / "zodiac.csv").read_bytes())
    rows = [zodiac.rows[i % len(zodiac.rows)] for i in range(args.n)]
    from generation.services.templates import LoraStackEntry

    spec = json.loads((DATA_DIR / "builtin_templates.json").read_text())
    spec = next(item for item in spec if item["slug"] == "zodiac")
    template = template_save(
        name=f"bench-{os.getpid()}",
        slug=f"bench-{os.getpid()}",
        columns=zodiac.columns,
        rows=rows,
        base_prompt=spec.get("base_prompt", ""),
        prompt_template=spec["prompt_template"],
        style_suffix=spec.get("style_suffix", ""),
        negative_prompt=spec.get("negative_prompt", ""),
        width=args.size,
        height=args.size,
        steps=args.steps,
        guidance_scale=7.5,
        lora_stack=[LoraStackEntry(lora=lora, weight=Decimal(str(w))) for lora, w in zip(loras, weights, strict=True)],
    )
    results: dict[str, float] = {}
    worker = None
    try:
        # (c) first its worker, so that its engine loads while (a) and (b) run.
        settings.IMAGINEER_CHUNK_SIZE = max(args.batch_size * 2, 1)
        worker = worker_start(
            "gpu",
            log_dir=work,
            extra_env={
                "IMAGINEER_TORCH_THREADS": str(args.threads),
                "IMAGINEER_BATCH_SIZE": str(args.batch_size),
                "IMAGINEER_MODEL": os.environ.get("IMAGINEER_MODEL", ""),
            },
        )
        run = run_start(template=template, theme="bench", overrides={"seed": 1000, "seed_policy": "increment"})
        prompts = [(job.prompt, job.negative_prompt, job.seed) for job in run.jobs.order_by("row_index")]
        # That run warms the worker (engine load, adapters); the timed run is the next one.
        wait_for(lambda: BatchGenerationRun.objects.get(pk=run.pk).is_finished, timeout=3600, message="warm-up run")

        if not args.skip_original:
            count = min(args.n, 6)
            started = time.perf_counter()
            for index, (prompt, negative, seed) in enumerate(prompts[:count]):
                one = {
                    "model": engine.source.location, "loras": [str(p) for p in paths], "weights": weights,
                    "prompt": prompt, "negative": negative, "seed": seed, "size": args.size,
                    "steps": args.steps, "guidance": 7.5, "threads": args.threads,
                    "output": str(work / f"original-{index}.png"),
                }  # fmt: skip
                subprocess.run(
                    [sys.executable, __file__, "--original-one", json.dumps(one)],
                    check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            # Timed on a few images: each costs a whole process start, and the rate does not change.
            results[f"(a) original: process per image ({count} imgs)"] = count / (time.perf_counter() - started)

        refs = None
        from generation.worker import _lora_refs

        first_job = run.jobs.first()
        assert first_job is not None
        refs = _lora_refs(first_job)
        batch = BatchSettings(width=args.size, height=args.size, steps=args.steps, guidance_scale=7.5, loras=refs)
        requests = [ImageRequest(p, n, s) for p, n, s in prompts]
        engine.generate(requests[:1], batch)  # adapters loaded, as in the resident worker

        def way_b() -> float:
            started = time.perf_counter()
            engine.generate(requests, batch, batch_size=args.batch_size)
            return args.n / (time.perf_counter() - started)

        def way_c() -> float:
            started = time.perf_counter()
            timed = run_start(template=template, theme="bench", overrides={"seed": 1000, "seed_policy": "increment"})
            wait_for(
                lambda: BatchGenerationRun.objects.get(pk=timed.pk).is_finished,
                timeout=3600,
                interval=0.05,
                message="timed run",
            )
            rate = args.n / (time.perf_counter() - started)
            timed.refresh_from_db()
            assert timed.status == "completed", timed.status
            return rate

        # (b) and (c) alternate, best of --repeat each: on a shared machine the load drifts.
        rates_b, rates_c = [], []
        for _ in range(args.repeat):
            rates_b.append(way_b())
            rates_c.append(way_c())
        results["(b) engine, batched, in process"] = max(rates_b)
        for size in [int(value) for value in args.batch_sizes.split(",") if value.strip()]:
            started = time.perf_counter()
            engine.generate(requests, batch, batch_size=size)
            results[f"(b) engine, batch size {size}"] = args.n / (time.perf_counter() - started)

        results["(c) full path: run_start -> worker -> files"] = max(rates_c)
        worker_info = EngineWorker.objects.order_by("-last_seen").first()
    finally:
        if worker is not None:
            worker.stop()
        shutil.rmtree(work, ignore_errors=True)
        from albums.models import Image

        runs = BatchGenerationRun.objects.filter(template=template)
        Image.objects.filter(generation_job__run__in=runs).delete()
        Album.objects.filter(pk__in=runs.values("album_id")).delete()
        runs.delete()
        BatchTemplate.objects.filter(pk=template.pk).delete()
        for lora in loras:
            lora.delete()

    print()
    print(f"{'way':48} {'images/s':>10}")
    print("-" * 60)
    for name, value in results.items():
        print(f"{name:48} {value:10.3f}")
    print("-" * 60)
    a = next((value for name, value in results.items() if name.startswith("(a)")), None)
    b = results["(b) engine, batched, in process"]
    c = results["(c) full path: run_start -> worker -> files"]
    if a:
        print(f"(c) / (a) = {c / a:6.1f}x   (target >= 5x)")
    print(f"(c) / (b) = {c / b:6.2f}    (target >= 0.85: within 15%)")
    print(f"worker: {worker_info.model_id if worker_info else '?'} on {worker_info.device if worker_info else '?'}")


if __name__ == "__main__":
    main()
