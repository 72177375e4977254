"""Deck page server time with 54 cards x 3 takes: ours (constant queries) vs a naive N+1 baseline.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/imagineer_bench .venv/bin/python bench/deck_page.py

Creates (and drops) a throwaway test database, builds a deck of 54 slots with 3 finished takes
each (real PNG files), signs its owner in, and times GET /albums/<id>/ (the deck page) through
Django's full request stack, the two variants interleaved request by request (the machine may
be shared; both see the same load). The baseline is the same page with each slot's takes and pick
loaded lazily, two queries per slot, as a first implementation typically does.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagineer.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

SLOTS, TAKES = 54, 3
ROUNDS = 60
BUDGET_MS = 50


def measure(
    client: Client, url: str, variants: dict[str, Callable[[], Any]]
) -> dict[str, tuple[list[float], list[float], int]]:
    """Each variant ROUNDS times, interleaved request by request so that both see the same load
    on a shared machine; then one more request each, counting its queries."""
    timings: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for patch in variants.values():
        with patch():
            client.get(url)  # warm caches (templates, permissions)
    for _ in range(ROUNDS):
        for name, patch in variants.items():
            with patch():
                start, start_cpu = time.perf_counter(), time.process_time()
                response = client.get(url)
                timings[name].append((time.perf_counter() - start) * 1000)
                cpu[name].append((time.process_time() - start_cpu) * 1000)
            assert response.status_code == 200
    results = {}
    for name, patch in variants.items():
        with patch(), CaptureQueriesContext(connection) as queries:
            client.get(url)
        results[name] = (timings[name], cpu[name], len(queries))
    return results


def main() -> None:
    settings.MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="bench-media-"))
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from generation import views_decks
        from generation.deck_selectors import CardRow, TakeRow
        from generation.models import DeckSlot
        from generation.tests.decks_support import deck_build
        from imagineer.tests.factories import UserFactory

        owner = UserFactory.create(role="creator")
        album = deck_build(slots=SLOTS, takes=TAKES, owner=owner)
        client = Client()
        client.force_login(owner)
        url = f"/albums/{album.pk}/"

        def naive(*, album_id):
            """Model instances, each slot's takes and pick fetched as the loop reaches them."""
            cards = []
            for slot in DeckSlot.objects.filter(album_id=album_id).order_by("index"):
                takes = [
                    TakeRow(
                        job.pk, job.status, job.seed, job.strength, job.result_image_id, job.progress_done, job.steps
                    )
                    for job in slot.takes.select_related("result_image").order_by("created_at", "id")
                ]
                pick = slot.pick.pk if slot.pick is not None else None
                cards.append(CardRow(slot.index, slot.title, slot.prompt_edit, pick, takes))
            return cards

        results = measure(
            client,
            url,
            {
                "baseline": lambda: mock.patch.object(views_decks, "deck_card_rows", naive),
                "ours": contextlib.nullcontext,
            },
        )
        baseline, baseline_cpu, baseline_queries = results["baseline"]
        ours, ours_cpu, ours_queries = results["ours"]
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)

    def row(name: str, timings: list[float], cpu: list[float], queries: int) -> str:
        ordered = sorted(timings)
        p95 = ordered[int(len(ordered) * 0.95) - 1]
        median, median_cpu = statistics.median(timings), statistics.median(cpu)
        return f"| {name:<26} | {queries:>7} | {median:>9.1f} | {p95:>8.1f} | {median_cpu:>13.1f} |"

    print(f"Deck page, {SLOTS} cards x {TAKES} takes, {ROUNDS} requests each, {connection.vendor}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("| variant                    | queries | median ms |  p95 ms | median CPU ms |")
    print("|----------------------------|---------|-----------|---------|---------------|")
    print(row("baseline (N+1 takes/picks)", baseline, baseline_cpu, baseline_queries))
    print(row("ours", ours, ours_cpu, ours_queries))
    for label, value in (("wall", statistics.median(ours)), ("CPU", statistics.median(ours_cpu))):
        verdict = "under" if value < BUDGET_MS else "OVER"
        print(f"ours: median {label} time {value:.1f} ms, {verdict} the {BUDGET_MS} ms budget")


if __name__ == "__main__":
    main()
