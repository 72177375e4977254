from django.db import migrations


def create_roles(apps, schema_editor):
    from imagineer.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("albums", "0001_initial"),
        ("generation", "0001_initial"),
        ("labeling", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
