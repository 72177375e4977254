"""Moving labeling, scraping and training onto the job base keeps existing rows: statuses that
changed name are rewritten, progress is filled in from the old counters."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BEFORE = [("albums", "0002_scrapejob"), ("labeling", "0002_labeling_job"), ("training", "0002_roles")]
AFTER = [
    ("albums", "0004_scrapejob_no_updated_at"),
    ("labeling", "0004_labeling_job_base_data"),
    ("training", "0004_trainingrun_phases"),
]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_existing_jobs_keep_their_rows_and_get_the_base_fields():
    old = _migrate(BEFORE)
    try:
        Album = old.get_model("albums", "Album")
        Image = old.get_model("albums", "Image")
        album = Album.objects.create(name="Old", slug="old", source_type="scrape")
        images = [Image.objects.create(file=f"x/{n}.png", width=1, height=1, sha256=f"{n:064d}") for n in range(4)]
        scrape = old.get_model("albums", "ScrapeJob").objects.create(
            album=album, start_urls=["https://example.com/"], status="running", max_images=40, images_downloaded=7
        )
        job = old.get_model("labeling", "LabelingJob").objects.create(
            album=album, backend="local", status="running", total=4, done=1, failed=1, skipped=1
        )
        Item = old.get_model("labeling", "LabelingJobItem")
        statuses = ["pending", "done", "skipped", "skipped"]
        errors = ["", "", "already labelled", "cancelled"]
        for image, status, error in zip(images, statuses, errors, strict=True):
            Item.objects.create(job=job, image=image, status=status, error=error)
        run_fields = {
            "album": album, "trigger_word": "t", "base_model": "tiny", "learning_rate": 1e-4, "rank": 4,
            "alpha": 4.0, "dropout": 0.0, "max_steps": 50, "save_every": 5, "resolution": 64, "batch_size": 1,
            "gradient_accumulation": 1, "seed": 1,
        }  # fmt: skip
        Run = old.get_model("training", "TrainingRun")
        training = Run.objects.create(name="a", status="training", current_step=12, **run_fields)
        preparing = Run.objects.create(name="b", status="preparing", **run_fields)
        done = Run.objects.create(name="c", status="completed", current_step=50, **run_fields)

        new = _migrate(AFTER)
        scrape = new.get_model("albums", "ScrapeJob").objects.get(pk=scrape.pk)
        assert (scrape.status, scrape.progress_done, scrape.progress_total) == ("running", 7, 40)
        assert scrape.heartbeat_at is not None  # from its updated_at: stale once old enough
        job = new.get_model("labeling", "LabelingJob").objects.get(pk=job.pk)
        assert (job.status, job.progress_total, job.progress_done) == ("running", 4, 3)
        items = new.get_model("labeling", "LabelingJobItem").objects.filter(job=job).order_by("image_id")
        assert list(items.values_list("status", flat=True)) == ["queued", "succeeded", "skipped", "cancelled"]
        Run = new.get_model("training", "TrainingRun")
        assert list(
            Run.objects.filter(pk__in=[training.pk, preparing.pk, done.pk])
            .order_by("name")
            .values_list("status", "phase", "progress_done", "progress_total")
        ) == [("running", "training", 12, 50), ("running", "preparing", 0, 50), ("completed", "", 50, 50)]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
