from django.db import migrations


def grant_train(apps, schema_editor):
    from imagineer.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0001_initial"),
        ("imagineer", "0001_roles"),
    ]

    operations = [migrations.RunPython(grant_train, migrations.RunPython.noop)]
