# The data step of 0003_trainingrun_job_base, in a migration of its own: PostgreSQL refuses the schema changes
# Django runs at the end of a migration (deferred indexes) on a table whose rows the same
# transaction just updated (pending trigger events).

from django.db import migrations
from django.db.models import F


def phases(apps, schema_editor):
    """preparing and training were statuses; now they are the phases of a running run."""
    TrainingRun = apps.get_model("training", "TrainingRun")
    TrainingRun.objects.update(progress_total=F("max_steps"))
    for phase in ("preparing", "training"):
        TrainingRun.objects.filter(status=phase).update(status="running", phase=phase)


def statuses(apps, schema_editor):
    TrainingRun = apps.get_model("training", "TrainingRun")
    TrainingRun.objects.filter(status="cancelling").update(status="training")
    for phase in ("preparing", "training"):
        TrainingRun.objects.filter(status="running", phase=phase).update(status=phase)


class Migration(migrations.Migration):

    dependencies = [
        ("training", "0003_trainingrun_job_base"),
    ]

    operations = [
        migrations.RunPython(phases, statuses),
    ]
