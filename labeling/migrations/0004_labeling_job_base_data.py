# The data step of 0003_labeling_job_base, in a migration of its own: PostgreSQL refuses the schema changes
# Django runs at the end of a migration (deferred indexes) on a table whose rows the same
# transaction just updated (pending trigger events).

import django.utils.timezone
from django.conf import settings
from django.db import migrations
from django.db.models import F


# Item statuses that changed name; a skipped item whose error says "cancelled" was cancelled.
ITEM_STATUSES = {"pending": "queued", "done": "succeeded"}


def job_base_fields(apps, schema_editor):
    LabelingJob = apps.get_model("labeling", "LabelingJob")
    LabelingJobItem = apps.get_model("labeling", "LabelingJobItem")
    LabelingJob.objects.update(progress_done=F("done") + F("failed") + F("skipped"))
    for old, new in ITEM_STATUSES.items():
        LabelingJobItem.objects.filter(status=old).update(status=new)
    LabelingJobItem.objects.filter(status="skipped", error="cancelled").update(status="cancelled")
    # Unfinished items: the labeling retry limit, and a start time from which the stale rule
    # can tell that a worker holding one is gone.
    unfinished = LabelingJobItem.objects.filter(status__in=["queued", "running"])
    unfinished.update(max_attempts=settings.IMAGINEER_LABEL_MAX_RETRIES + 1)
    unfinished.filter(status="running").update(started_at=django.utils.timezone.now())


def old_statuses(apps, schema_editor):
    LabelingJob = apps.get_model("labeling", "LabelingJob")
    LabelingJobItem = apps.get_model("labeling", "LabelingJobItem")
    LabelingJob.objects.filter(status="cancelling").update(status="cancelled")
    LabelingJobItem.objects.filter(status="cancelled").update(status="skipped", error="cancelled")
    LabelingJobItem.objects.filter(status="cancelling").update(status="running")
    for old, new in ITEM_STATUSES.items():
        LabelingJobItem.objects.filter(status=new).update(status=old)


class Migration(migrations.Migration):

    dependencies = [
        ("labeling", "0003_labeling_job_base"),
    ]

    operations = [
        migrations.RunPython(job_base_fields, old_statuses),
    ]
