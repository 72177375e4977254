from django.core.management.base import BaseCommand

from generation.services.builtin import builtin_templates_load


class Command(BaseCommand):
    help = "Create or refresh the built-in batch templates (card deck, tarot, zodiac) from data/. Idempotent."

    def handle(self, *args, **options) -> None:
        for result in builtin_templates_load():
            state = "created" if result.created else ("updated" if result.changed else "unchanged")
            self.stdout.write(f"{result.template.name}: {result.template.row_count} rows ({state})")
