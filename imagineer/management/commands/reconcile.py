"""``manage.py reconcile``: one reconciler pass now (beat runs it every few seconds)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Repair background work once: requeue stale work, resend lost messages, settle runs, remove stray files."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-files", action="store_true", help="skip the media sweep")

    def handle(self, *args: Any, **options: Any) -> None:
        from imagineer.reconcile import reconcile

        report = reconcile(sweep_files=not options["no_files"])
        self.stdout.write(json.dumps(report.as_dict(), sort_keys=True))
