from pathlib import Path

from django.conf import settings
from django.db import migrations, models


def backfill(apps, schema_editor):
    """Hash the files already in the library; a missing file is hashed when it is next used."""
    from generation.engine.lora_hash import lora_file_hashes

    Lora = apps.get_model("generation", "Lora")
    root = Path(settings.LORA_ROOT).resolve()
    for lora in Lora.objects.filter(a1111_hash="").only("pk", "file"):
        path = (root / lora.file).resolve()
        if path.is_relative_to(root) and path.is_file():
            Lora.objects.filter(pk=lora.pk).update(a1111_hash=lora_file_hashes(path)[1])


class Migration(migrations.Migration):
    dependencies = [
        ("generation", "0002_engine_worker"),
    ]

    operations = [
        migrations.AddField(
            model_name="lora",
            name="a1111_hash",
            field=models.CharField(blank=True, db_index=True, max_length=64),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
