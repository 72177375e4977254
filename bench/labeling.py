"""Album labeling throughput: an album through the labeling queue with 1 and with 4 worker
processes, against the test double of the Claude CLI image on the real Docker engine.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/imagineer_bench REDIS_URL=redis://127.0.0.1:6379/5 \\
    DOCKER_HOST=unix:///var/lib/imagineer-docker/docker.sock .venv/bin/python bench/labeling.py

Uses its own throwaway database (test_<name>, kept between runs) and media folder; give it a
Redis database of its own. Two answer modes of the test double: ``good`` answers at once, so
the time is all container overhead; ``slow`` waits 2 s like a model call would.
Baseline: one worker process, one container at a time (the original labelled sequentially).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
MEDIA = Path(tempfile.mkdtemp(prefix="imagineer-bench-labeling-"))
os.environ["MEDIA_ROOT"] = str(MEDIA)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagineer.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--workers", default="1,4", help="comma-separated worker concurrencies")
    parser.add_argument("--modes", default="good,slow", help="test double answer modes: good, slow")
    parser.add_argument("--overhead-runs", type=int, default=10)
    args = parser.parse_args()
    if not settings.REDIS_URL:
        sys.exit("Set REDIS_URL (a Redis database of the benchmark's own).")

    import docker
    import redis

    from labeling.tests.docker_image import docker_host_ensure, fake_image_build

    docker_host_ensure()
    client = docker.from_env(timeout=60)
    image_tag = fake_image_build(client)
    connection.creation.create_test_db(verbosity=0, keepdb=True, serialize=False)
    redis.Redis.from_url(settings.REDIS_URL).delete("labeling")

    credentials = MEDIA / "credentials.json"
    credentials.write_text('{"claudeAiOauth": {"accessToken": "bench-not-a-secret"}}')
    env = {
        "IMAGINEER_LABELER": "claude-docker",
        "IMAGINEER_CLAUDE_IMAGE": image_tag,
        "IMAGINEER_CLAUDE_NETWORK": "none",
        "IMAGINEER_CLAUDE_CREDENTIALS": str(credentials),
        "IMAGINEER_LABEL_MEMORY_MB": "128",
        "IMAGINEER_LABEL_PIDS_LIMIT": "64",
    }
    settings.IMAGINEER_CLAUDE_IMAGE = image_tag
    settings.IMAGINEER_CLAUDE_NETWORK = "none"
    settings.IMAGINEER_CLAUDE_CREDENTIALS = credentials
    settings.IMAGINEER_LABEL_MEMORY_MB = 128
    settings.IMAGINEER_LABEL_PIDS_LIMIT = 64

    rows = [overhead_row(args.overhead_runs)]
    for mode in args.modes.split(","):
        for workers in (int(w) for w in args.workers.split(",")):
            rows.append(album_row(mode, workers, args.images, env))
    print_table(rows, args.images)


def marked_album(mode: str, count: int):
    from albums.models import Album, AlbumImage, Image
    from labeling.tests.conftest import marked_png

    album = Album.objects.create(name=f"bench {mode} {time.time_ns()}", slug=f"bench-{mode}-{time.time_ns()}")
    for position in range(count):
        relative = f"outputs/{album.slug}/{position:02d}.png"
        path = marked_png(MEDIA / relative, None if mode == "good" else mode, color=(position * 9 % 255, 40, 90))
        image = Image.objects.create(
            file=relative, width=24, height=16, sha256=f"{position:064d}", file_size=path.stat().st_size
        )
        AlbumImage.objects.create(album=album, image=image, position=position)
    return album


def album_row(mode: str, workers: int, count: int, env: dict[str, str]) -> tuple:
    from imagineer.testing import wait_for, worker_start
    from labeling import services

    album = marked_album(mode, count)
    with tempfile.TemporaryDirectory() as logs:
        worker = worker_start("labeling", log_dir=Path(logs), concurrency=workers, extra_env=env)
        try:
            started = time.perf_counter()
            job = services.album_label_start(album=album, backend="claude-docker")

            def finished() -> bool:
                job.refresh_from_db()
                return not job.is_active

            wait_for(finished, timeout=600, interval=0.05, message="the album job")
            elapsed = time.perf_counter() - started
        finally:
            worker.stop()
    if job.done != count:
        sys.exit(f"{job.status}: only {job.done} of {count} labelled: {job.errors[:3]}")
    label = "baseline" if workers == 1 else "ours"
    return (f"album via queue, mode={mode}, -c {workers} ({label})", count, elapsed, count / elapsed)


def overhead_row(runs: int) -> tuple:
    """A container's cost: create + start (init, mounts, limits) + wait + logs + remove, minus
    running the same `claude` double directly on this host."""
    from labeling.backends.base import prompt_build
    from labeling.backends.claude_docker import ClaudeDockerLabeler
    from labeling.backends.cli import claude_args
    from labeling.tests.conftest import marked_png
    from labeling.tests.docker_image import FAKE_DIR

    image = marked_png(MEDIA / "overhead.png", None)
    labeler = ClaudeDockerLabeler()
    args = claude_args(prompt_build("default", "/images/image.png"))
    labeler.run(image, args)  # warm the client and the engine's image cache
    in_container, on_host = [], []
    host_args = claude_args(prompt_build("default", str(image)))
    for _ in range(runs):
        started = time.perf_counter()
        labeler.run(image, args)
        in_container.append(time.perf_counter() - started)
        started = time.perf_counter()
        subprocess.run([str(FAKE_DIR / "claude"), *host_args], capture_output=True, check=True)
        on_host.append(time.perf_counter() - started)
    overhead = statistics.median(in_container) - statistics.median(on_host)
    return (f"per-container overhead (median of {runs})", runs, overhead, 1 / statistics.median(in_container))


def print_table(rows: list[tuple], count: int) -> None:
    print(f"\nLabeling benchmark: {count} images, test double of the Claude CLI, {os.cpu_count()} CPUs")
    print(f"| {'what':<52} | {'images':>6} | {'seconds':>8} | {'images/s':>8} |")
    print(f"|{'-' * 54}|{'-' * 8}|{'-' * 10}|{'-' * 10}|")
    for what, images, seconds, rate in rows:
        print(f"| {what:<52} | {images:>6} | {seconds:>8.3f} | {rate:>8.2f} |")


if __name__ == "__main__":
    main()
