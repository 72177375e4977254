"""Database writes per generation chunk: this tree against another (e.g. main) in one run.

    DATABASE_URL=postgres://.../imagineer_x .venv/bin/python bench/progress_writes.py \
        [--before-tree /tmp/main-export] [--jobs 8] [--steps 20,50] [--size 64] [--batch-size 4]

For each tree it makes a scratch database (``<name>_pw_before`` / ``_pw_after`` beside
DATABASE_URL's), migrates it, starts a run of ``--jobs`` rows and runs its chunk in process
with the tiny model, counting the INSERT / UPDATE / DELETE statements the chunk sends (a
wrapper on the connection) and the time it takes. ``--before-tree`` is a plain copy of the
other tree (``git archive main | tar -x -C DIR``); it runs with its own code in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def measure(args: argparse.Namespace) -> None:
    """In the tree given by the working directory: one chunk per step count, writes counted."""
    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagineer.settings")
    import django

    django.setup()
    import torch
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    torch.set_num_threads(1)
    import importlib

    from generation.engine.tiny import tiny_model_build
    from generation.models import BatchTemplate, GenerationJob
    from generation.services.runs import run_start

    try:
        chunk = importlib.import_module("generation.worker").chunk_run  # after: the worker module
    except ImportError:
        chunk = importlib.import_module("generation.engine.execute").chunk_execute  # before: the engine did it

    tiny_model_build(settings.IMAGINEER_TINY_MODEL_DIR)
    template = BatchTemplate.objects.create(
        name=f"pw-{os.getpid()}",
        slug=f"pw-{os.getpid()}",
        columns=["name"],
        csv_data=[{"name": f"card {i}"} for i in range(args.jobs)],
        prompt_template="a {name}",
        width=args.size,
        height=args.size,
        steps=20,
        guidance_scale=7.0,
    )
    results = {}
    # The first chunk (2 steps) loads the engine and is not reported.
    for number, steps in enumerate([2, *(int(value) for value in args.steps.split(","))]):
        run = run_start(template=template, theme="bench", overrides={"steps": steps, "seed": 1})
        ids = list(run.jobs.order_by("row_index").values_list("pk", flat=True))
        task_id = GenerationJob.objects.get(pk=ids[0]).task_id
        counts = {"writes": 0, "queries": 0}

        def count(execute, sql, params, many, context, counts=counts):
            counts["queries"] += 1
            if sql.lstrip().split(" ", 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
                counts["writes"] += 1
            return execute(sql, params, many, context)

        started = time.perf_counter()
        with connection.execute_wrapper(count):
            summary = chunk(job_ids=ids, task_id=task_id)
        seconds = time.perf_counter() - started
        assert summary["succeeded"] == args.jobs, summary
        if number:
            results[steps] = {**counts, "seconds": round(seconds, 3)}
    print(json.dumps(results))


def scratch_url(suffix: str) -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"{parts.path}_pw_{suffix}"))


def recreate(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        name = parts.path.lstrip("/")
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def run_tree(tree: Path, label: str, args: argparse.Namespace, media: Path) -> dict:
    url = scratch_url(label)
    recreate(url)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "MEDIA_ROOT": str(media / label),
        "LORA_ROOT": str(media / label / "loras"),
        "IMAGINEER_TINY_MODEL_DIR": str(media / "tiny"),
        "IMAGINEER_BATCH_SIZE": str(args.batch_size),
        "IMAGINEER_TORCH_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(tree),
    }
    command = [sys.executable, str(Path(__file__).resolve()), "--measure", "--jobs", str(args.jobs)]
    command += ["--steps", args.steps, "--size", str(args.size)]
    try:
        output = subprocess.run(command, cwd=tree, env=env, check=True, capture_output=True, text=True).stdout
    finally:
        drop(url)
    return {int(k): v for k, v in json.loads(output.strip().splitlines()[-1]).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before-tree", type=Path, help="another checkout to compare (e.g. an export of main)")
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--steps", default="20,50")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args)
        return
    import tempfile

    media = Path(tempfile.mkdtemp(prefix="imagineer-pw-"))
    trees = ([("before", args.before_tree.resolve())] if args.before_tree else []) + [("after", ROOT)]
    results = {label: run_tree(tree, label, args, media) for label, tree in trees}
    print(f"\nOne chunk of {args.jobs} jobs, {args.size}x{args.size}, batch {args.batch_size}, tiny model, CPU")
    print(f"{'tree':8} {'steps':>5} {'writes':>7} {'queries':>8} {'seconds':>8}")
    for label, rows in results.items():
        for steps, row in rows.items():
            print(f"{label:8} {steps:5} {row['writes']:7} {row['queries']:8} {row['seconds']:8.2f}")


if __name__ == "__main__":
    main()
