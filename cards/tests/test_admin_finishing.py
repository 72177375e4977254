"""Finishing jobs in the admin: a read-only list and detail for curators, like the other job kinds."""

from __future__ import annotations

import pytest

from cards.models import FinishingJob
from cards.services.designs import design_create
from imagineer.tests.factories import AlbumFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(zodiac_template):
    design = design_create(template=zodiac_template, name="Plain")
    return FinishingJob.objects.create(
        album=AlbumFactory.create(name="Zodiac deck"),
        design=design,
        status=FinishingJob.Status.FAILED,
        stage="finish",
        progress_done=5,
        progress_total=12,
        attempts=2,
        error="Card 6: the pick's file is gone.",
        result={"files": {"zip": "exports/zodiac/job-1/cards.zip"}, "missing": [{"index": 3}]},
    )


def test_a_curator_reads_finishing_jobs_and_cannot_change_them(client, job):
    curator = UserFactory.create(role="curator")
    client.force_login(curator)
    listing = client.get("/admin/cards/finishingjob/")
    assert listing.status_code == 200
    text = listing.content.decode()
    assert "Zodiac deck" in text and "Plain" in text and "Failed" in text
    detail = client.get(f"/admin/cards/finishingjob/{job.pk}/change/").content.decode()
    for shown in ("the pick&#x27;s file is gone", "exports/zodiac/job-1/cards.zip", "missing picks: 1", "finish"):
        assert shown in detail
    # Read-only: no save button, no add page; a POST changes nothing.
    assert 'name="_save"' not in detail
    assert client.get("/admin/cards/finishingjob/add/").status_code == 403
    client.post(f"/admin/cards/finishingjob/{job.pk}/change/", {"status": "queued"})
    job.refresh_from_db()
    assert job.status == FinishingJob.Status.FAILED


def test_others_are_sent_to_sign_in(client, job):
    client.force_login(UserFactory.create(role="creator"))
    assert client.get(f"/admin/cards/finishingjob/{job.pk}/change/").status_code == 302
