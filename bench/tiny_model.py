"""The built-in tiny model at real sizes: version 1's shape against today's, side by side.

    .venv/bin/python bench/tiny_model.py [--width 512] [--height 720] [--steps 25] [--threads 1]
        [--old-images 1] [--new-images 8] [--batch-size 4]
        [--deck]   # also: the 54-card deck through run_start -> a real gpu worker (needs DATABASE_URL, REDIS_URL)

Both models are built into a temporary folder from the same seed; the same prompts (the
playing-card template's), seeds, size and steps go through our Engine (one CPU generator per
image, as in the worker). Prints seconds per image for each shape and the time the 54-card
deck would take at that rate. The old shape is slow (about 5 s per step at 512x720), so it
is timed on fewer images; the rate per image does not depend on the count.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DECK_CARDS = 54


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the tests and a shared CPU use 1)")
    parser.add_argument("--old-images", type=int, default=1)
    parser.add_argument("--new-images", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4, help="images per pipeline call (the CPU default)")
    parser.add_argument("--deck", action="store_true", help="also time the whole deck through a real gpu worker")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="imagineer-bench-tiny-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagineer.settings")
    os.environ["MEDIA_ROOT"] = str(work / "media")
    os.environ["IMAGINEER_TINY_MODEL_DIR"] = str(work / "tiny-new")
    os.environ["IMAGINEER_MODEL"] = ""
    os.environ["IMAGINEER_TORCH_THREADS"] = str(args.threads)
    import django

    django.setup()
    import torch

    from generation.engine.runtime import BatchSettings, Engine, ImageRequest
    from generation.engine.source import ModelSource
    from generation.engine.tiny import TINY_SHAPE, TinyShape, tiny_model_build
    from generation.services.builtin import DATA_DIR
    from generation.services.templates import prompt_construct, prompt_render_row

    torch.set_num_threads(args.threads)
    # Version 1 of the built-in model: attention at full latent resolution.
    old_shape = TinyShape(
        unet_channels=(32, 64),
        unet_down=("CrossAttnDownBlock2D", "DownBlock2D"),
        unet_up=("UpBlock2D", "CrossAttnUpBlock2D"),
        unet_layers_per_block=2,
        unet_norm_groups=32,
        vae_channels=(16, 16, 32, 32),
        vae_norm_groups=8,
        vae_mid_attention=True,
    )
    import csv
    import io
    import json

    templates = json.loads((DATA_DIR / "builtin_templates.json").read_text())
    spec = next(item for item in templates if item["slug"] == "card_deck")
    rows = list(csv.DictReader(io.StringIO((DATA_DIR / spec["csv"]).read_text())))
    prompts = [
        prompt_construct(
            base_prompt=spec["base_prompt"],
            theme=spec["example_theme"],
            row_text=prompt_render_row(spec["prompt_template"], row),
            style_suffix=spec["style_suffix"],
        )
        for row in rows
    ]
    batch = BatchSettings(width=args.width, height=args.height, steps=args.steps, guidance_scale=spec["guidance_scale"])
    results: dict[str, tuple[float, int, int]] = {}
    try:
        for label, shape, count in (
            ("v1 (old)", old_shape, args.old_images),
            ("v2 (new)", TINY_SHAPE, args.new_images),
        ):
            folder = tiny_model_build(work / label.split()[0], shape=shape)
            params = sum(path.stat().st_size for path in folder.rglob("*.safetensors"))
            engine = Engine(
                ModelSource(kind="folder", location=str(folder), model_id=label),
                device="cpu",
                dtype="fp32",
                batch_size=args.batch_size,
            ).load()
            requests = [
                ImageRequest(prompts[i % len(prompts)], spec["negative_prompt"], 1000 + i) for i in range(count)
            ]
            engine.generate(requests[:1], BatchSettings(width=64, height=64, steps=2, guidance_scale=7.5))  # warm-up
            started = time.perf_counter()
            engine.generate(requests, batch, batch_size=min(args.batch_size, count))
            results[label] = ((time.perf_counter() - started) / count, count, params)
            print(f"{label}: {results[label][0]:.2f} s per image over {count}", flush=True)
        deck_seconds = _deck_through_worker(work, args) if args.deck else None
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(
        f"{args.width}x{args.height}, {args.steps} steps, batch {args.batch_size}, torch threads {args.threads}, "
        f"{torch.get_num_threads()} used"
    )
    print(f"{'shape':10} {'images':>6} {'weights MB':>10} {'s/image':>9} {'s/step':>8} {'54-card deck':>13}")
    print("-" * 62)
    for label, (seconds, count, size) in results.items():
        print(
            f"{label:10} {count:6d} {size / 1e6:10.1f} {seconds:9.2f} {seconds / args.steps:8.3f} "
            f"{_minutes(seconds * DECK_CARDS):>13}"
        )
    print("-" * 62)
    old, new = results["v1 (old)"][0], results["v2 (new)"][0]
    print(f"speed-up per image: {old / new:.1f}x")
    if deck_seconds is not None:
        print(f"the deck through run_start -> gpu worker -> files: {_minutes(deck_seconds)} (target < 2 min)")


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"


def _deck_through_worker(work: Path, args: argparse.Namespace) -> float:
    """The card deck template as `make run` makes it: run_start, a real gpu worker, PNG + sidecar files."""
    from django.conf import settings
    from django.core.management import call_command

    from generation.models import BatchGenerationRun, BatchTemplate
    from generation.services.builtin import builtin_templates_load
    from generation.services.runs import run_start
    from imagineer.testing import wait_for, worker_start

    if not settings.REDIS_URL:
        sys.exit("--deck needs REDIS_URL and DATABASE_URL (a gpu worker takes the run).")
    call_command("migrate", verbosity=0)
    builtin_templates_load()
    template = BatchTemplate.objects.get(slug="card_deck")
    worker = worker_start("gpu", log_dir=work, extra_env={"IMAGINEER_TORCH_THREADS": str(args.threads)})
    try:
        warm = run_start(template=template, theme="bench", overrides={"steps": 1, "width": 64, "height": 64})
        wait_for(lambda: BatchGenerationRun.objects.get(pk=warm.pk).is_finished, timeout=600, message="warm-up run")
        started = time.perf_counter()
        run = run_start(template=template, theme="gothic steampunk", overrides={"seed": 1000})
        wait_for(
            lambda: BatchGenerationRun.objects.get(pk=run.pk).is_finished, timeout=3600, interval=0.2, message="deck"
        )
        seconds = time.perf_counter() - started
        run.refresh_from_db()
        if run.status != "completed" or run.jobs.filter(status="succeeded").count() != DECK_CARDS:
            sys.exit(f"The deck ended {run.status}: {run.jobs.filter(status='succeeded').count()} images made.")
        return seconds
    finally:
        worker.stop()


if __name__ == "__main__":
    main()
