# A migration of its own: PostgreSQL refuses to alter a table whose rows the previous
# migration's data step just updated in the same transaction (pending trigger events).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("albums", "0003_scrapejob_job_base"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="scrapejob",
            name="updated_at",
        ),
    ]
