"""generation/worker.py in the test process: throttled progress, row order, cancel, files, ETA."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from django.db import connection, connections

from generation.models import BatchGenerationRun, GenerationJob
from generation.selectors import run_progress
from generation.services.jobs import job_cancel
from generation.services.runs import run_start
from generation.worker import PROGRESS_INTERVAL, chunk_claim, chunk_run
from imagineer.testing import wait_for
from imagineer.tests.factories import BatchTemplateFactory

Status = GenerationJob.Status


def _template(rows: int, steps: int = 2):
    return BatchTemplateFactory(
        csv_data=[{"sign": f"sign {i}", "element": "fire"} for i in range(rows)], steps=steps, width=64, height=64
    )


def _chunks(run: BatchGenerationRun) -> list[tuple[str, list[int]]]:
    """The (task id, job ids) of each chunk message, in the order they were sent."""
    chunks: dict[str, list[int]] = {}
    for pk, task_id in run.jobs.order_by("row_index").values_list("pk", "task_id"):
        chunks.setdefault(task_id, []).append(pk)
    return list(chunks.items())


@pytest.mark.django_db
def test_progress_is_written_a_few_times_per_second_not_per_step(settings):
    settings.IMAGINEER_BATCH_SIZE = 4
    run = run_start(template=_template(4, steps=2), theme="warm-up")
    task_id, ids = _chunks(run)[0]
    chunk_run(job_ids=ids, task_id=task_id)  # loads the engine: not measured

    run = run_start(template=_template(4), theme="ink", overrides={"steps": 50})
    task_id, ids = _chunks(run)[0]
    progress_writes = []

    def count(execute, sql, params, many, context):
        # The step write (progress and heartbeat), not the one that records the finished image.
        step_write = '"progress_done" = ' in sql and '"heartbeat_at" = ' in sql and "result_image_id" not in sql
        if sql.startswith('UPDATE "generation_generationjob"') and step_write:
            progress_writes.append(time.monotonic())
        return execute(sql, params, many, context)

    started = time.monotonic()
    with connection.execute_wrapper(count):
        summary = chunk_run(job_ids=ids, task_id=task_id)
    seconds = time.monotonic() - started
    assert summary == {"claimed": 4, "succeeded": 4, "failed": 0, "cancelled": 0}
    # One pipeline call of 4 images x 50 steps: 50 step callbacks, a write at most every interval.
    assert 1 <= len(progress_writes) <= seconds / PROGRESS_INTERVAL + 1
    assert len(progress_writes) < 50
    gaps = [b - a for a, b in itertools.pairwise(progress_writes)]
    assert all(gap >= PROGRESS_INTERVAL * 0.9 for gap in gaps), gaps
    run.refresh_from_db()
    assert (run.completed_items, run.progress_done, run.progress_total) == (4, 200, 200)
    assert run.status == BatchGenerationRun.Status.COMPLETED
    assert set(run.jobs.values_list("progress_done", "progress_total")) == {(50, 50)}


@pytest.mark.django_db
def test_rows_start_in_row_order_whichever_chunk_message_comes_first(settings):
    settings.IMAGINEER_CHUNK_SIZE = 4
    settings.IMAGINEER_BATCH_SIZE = 4
    run = run_start(template=_template(8), theme="ink")
    (first_task, first_ids), (second_task, second_ids) = _chunks(run)
    # The broker hands the second chunk over first: it still makes rows 1-4.
    assert chunk_run(job_ids=second_ids, task_id=second_task)["succeeded"] == 4
    done = run.jobs.filter(status=Status.SUCCEEDED)
    assert sorted(done.values_list("row_index", flat=True)) == [0, 1, 2, 3]
    assert set(done.values_list("task_id", flat=True)) == {second_task}
    assert chunk_run(job_ids=first_ids, task_id=first_task)["succeeded"] == 4
    run.refresh_from_db()
    assert run.status == BatchGenerationRun.Status.COMPLETED and run.completed_items == 8
    positions = list(
        run.album.memberships.order_by("position").values_list("position", "image__generation_job__row_index")
    )
    assert positions == [(row + 1, row) for row in range(8)]


@pytest.mark.django_db
def test_png_and_sidecar_are_complete_files_and_no_temporary_is_left(media_root):
    run = run_start(template=_template(2), theme="ink")
    task_id, ids = _chunks(run)[0]
    chunk_run(job_ids=ids, task_id=task_id)
    for job in run.jobs.select_related("result_image"):
        png = media_root / job.result_image.file.name
        assert png.read_bytes().startswith(b"\x89PNG") and png.with_suffix(".json").is_file()
    assert not [path for path in media_root.rglob("*") if path.name.endswith(".tmp")]


@pytest.mark.django_db(transaction=True)
def test_cancel_stops_the_pipeline_at_the_next_progress_write_and_eta_comes_from_steps(settings):
    settings.IMAGINEER_BATCH_SIZE = 2
    warm = run_start(template=_template(2), theme="warm-up")
    task_id, ids = _chunks(warm)[0]
    chunk_run(job_ids=ids, task_id=task_id)

    run = run_start(template=_template(2), theme="ink", overrides={"steps": 150})
    task_id, ids = _chunks(run)[0]
    seen: dict = {}

    def canceller():
        try:
            wait_for(
                lambda: GenerationJob.objects.filter(pk__in=ids, progress_done__gt=0).exists(),
                timeout=60,
                interval=0.01,
                message="the first progress write",
            )
            seen["progress"] = run_progress(run=BatchGenerationRun.objects.get(pk=run.pk))
            seen["cancelled_at"] = time.monotonic()
            job_cancel(job=GenerationJob.objects.get(pk=ids[0]))
            job_cancel(job=GenerationJob.objects.get(pk=ids[1]))
        finally:
            connections.close_all()

    thread = threading.Thread(target=canceller)
    thread.start()
    summary = chunk_run(job_ids=ids, task_id=task_id)
    stopped_at = time.monotonic()
    thread.join()
    assert summary["cancelled"] == 2 and summary["succeeded"] == 0
    # The pipeline stopped at the next progress write, long before its 150 steps.
    assert stopped_at - seen["cancelled_at"] < PROGRESS_INTERVAL + 2
    steps = set(GenerationJob.objects.filter(pk__in=ids).values_list("progress_done", flat=True))
    assert max(steps) < 150
    assert set(GenerationJob.objects.filter(pk__in=ids).values_list("status", flat=True)) == {Status.CANCELLED}
    progress = seen["progress"]
    # No image is finished yet, and the ETA is already known from the denoising steps.
    assert progress["completed"] == 0 and progress["steps_done"] > 0 and progress["eta_seconds"] is not None
    assert progress["steps_total"] == 300


@pytest.mark.django_db
def test_a_redelivered_chunk_gets_back_the_rows_it_took_from_the_front(settings):
    settings.IMAGINEER_CHUNK_SIZE = 4
    run = run_start(template=_template(8), theme="ink")
    _, (second_task, second_ids) = _chunks(run)
    taken = chunk_claim(job_ids=second_ids, task_id=second_task, worker="host:1")
    assert [job.row_index for job in taken] == [0, 1, 2, 3]
    # host:1 dies; the broker redelivers the same message to host:2.
    again = chunk_claim(job_ids=second_ids, task_id=second_task, worker="host:2")
    assert [job.row_index for job in again] == [0, 1, 2, 3]
    assert {(job.worker, job.attempts) for job in again} == {("host:2", 2)}
