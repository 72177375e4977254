"""The gpu task body in the test process: one failing item, duplicate delivery, cancel flags."""

from __future__ import annotations

import pytest

from albums.models import AlbumImage, Image
from generation.models import BatchGenerationRun, GenerationJob
from generation.selectors import run_progress
from generation.services.runs import run_start
from generation.worker import chunk_run
from imagineer.tests.factories import BatchTemplateFactory

pytestmark = pytest.mark.django_db


def test_one_failing_item_fails_alone_and_a_duplicate_delivery_changes_nothing():
    run = run_start(template=BatchTemplateFactory(), theme="noir", overrides={"seed": 5})
    jobs = list(run.jobs.order_by("row_index"))
    # Row 2's LoRA has left the library since the run started.
    jobs[1].lora_stack = [{"id": 0, "name": "gone", "sha256": "0" * 64, "weight": "1.00"}]
    jobs[1].save(update_fields=["lora_stack"])
    ids = [job.pk for job in jobs]
    GenerationJob.objects.filter(pk__in=ids).update(task_id="task-1")

    summary = chunk_run(job_ids=ids, task_id="task-1")
    assert summary == {"claimed": 3, "succeeded": 2, "failed": 1, "cancelled": 0}
    run.refresh_from_db()
    assert run.status == BatchGenerationRun.Status.COMPLETED_WITH_ERRORS
    assert (run.completed_items, run.failed_items) == (2, 1)
    items = run_progress(run=run)["items"]
    assert [item["status"] for item in items] == ["succeeded", "failed", "succeeded"]
    assert "'gone'" in items[1]["error"] and "no longer in the library" in items[1]["error"]
    assert list(AlbumImage.objects.filter(album=run.album).values_list("position", flat=True)) == [1, 3]

    # The same message again (a redelivery after the work was done): nothing is claimed or written.
    assert chunk_run(job_ids=ids, task_id="task-1")["claimed"] == 0
    # A different task id never takes over another task's jobs.
    assert chunk_run(job_ids=ids, task_id="task-2")["claimed"] == 0
    assert Image.objects.count() == 2


def test_cancel_requested_before_the_chunk_starts_is_honoured():
    run = run_start(template=BatchTemplateFactory(), theme="noir")
    ids = list(run.jobs.order_by("row_index").values_list("pk", flat=True))
    GenerationJob.objects.filter(pk__in=ids).update(task_id="task-1")
    GenerationJob.objects.filter(pk=ids[0]).update(cancel_requested=True)
    summary = chunk_run(job_ids=ids, task_id="task-1")
    assert (summary["succeeded"], summary["claimed"]) == (2, 2)
    assert GenerationJob.objects.get(pk=ids[0]).status == GenerationJob.Status.CANCELLED
