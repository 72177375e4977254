"""Page requests never import the engine: torch and diffusers stay out of the web process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.conf import settings

from generation.models import BatchGenerationRun, GenerationJob
from imagineer.testing import worker_env
from imagineer.tests.factories import AlbumImageFactory, BatchTemplateFactory, UserFactory

HEAVY = ("torch", "diffusers", "transformers", "peft", "accelerate")

# Runs in a fresh interpreter against the (committed) test database.
SCRIPT = """
import json, sys
import django
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
client = Client()
client.force_login(get_user_model().objects.get(username=sys.argv[1]))
statuses = {url: client.get(url).status_code for url in json.loads(sys.argv[2])}
print(json.dumps({"statuses": statuses, "heavy": sorted(set(json.loads(sys.argv[3])) & set(sys.modules))}))
"""


@pytest.mark.django_db(transaction=True)
def test_no_page_imports_torch(tmp_path):
    user = UserFactory(role="creator")
    template = BatchTemplateFactory()
    membership = AlbumImageFactory()
    run = BatchGenerationRun.objects.create(template=template, album=membership.album, total_items=1)
    GenerationJob.objects.create(
        run=run,
        row_index=0,
        prompt="p",
        width=64,
        height=64,
        steps=2,
        guidance_scale=7,
        seed=1,
        result_image=membership.image,
        status="succeeded",
    )
    urls = [
        "/",
        "/templates/",
        f"/templates/{template.slug}/",
        "/albums/",
        f"/albums/{membership.album_id}/",
        f"/albums/{membership.album_id}/images/{membership.image_id}/",
        f"/runs/{run.pk}/",
        f"/runs/{run.pk}/progress",
        "/generate/",
        "/jobs/",
        f"/images/{membership.image_id}/thumbnail",
    ]
    env = worker_env({"MEDIA_ROOT": str(settings.MEDIA_ROOT)})
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, user.username, json.dumps(urls), json.dumps(HEAVY)],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["statuses"] == dict.fromkeys(urls, 200)
    assert report["heavy"] == []
