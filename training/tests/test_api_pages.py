"""Training API and pages: validation errors, permissions, owner checks, the export download."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.urls import reverse

from imagineer.tests.factories import UserFactory
from training.models import TrainingRun
from training.services.runs import training_start
from training.tests.conftest import album_make
from training.views import loss_chart

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(album, creator):
    # enqueue=False: no worker here; the run stays queued.
    return training_start(album=album, name="Cards", trigger_word="crdz", created_by=creator, enqueue=False)


def test_api_start_validates_fields(client, creator, album):
    client.force_login(creator)
    url = reverse("training-api:run-list")
    response = client.post(
        url,
        {"album": album.pk, "name": "X", "trigger_word": "crdz", "rank": 500, "max_steps": 0},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"rank", "max_steps"}
    small = album_make(1)
    response = client.post(
        url, {"album": small.pk, "name": "X", "trigger_word": "crdz"}, content_type="application/json"
    )
    assert response.status_code == 400 and "at least 2" in response.json()["error"]["fields"]["album"][0]
    response = client.post(url, {"album": 999999, "name": "X", "trigger_word": "crdz"}, content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["fields"] == {"album": ["No such album."]}
    assert not TrainingRun.objects.exists()


def test_api_permissions_and_ownership(client, creator, queued):
    viewer, other = UserFactory(role="viewer"), UserFactory(role="creator")
    assert client.get(reverse("training-api:run-list")).status_code in (401, 403)
    client.force_login(viewer)
    response = client.post(
        reverse("training-api:run-list"),
        {"album": queued.album_id, "name": "Y", "trigger_word": "y"},
        content_type="application/json",
    )
    assert response.status_code == 403
    client.force_login(other)
    assert client.get(reverse("training-api:run-detail", args=[queued.pk])).status_code == 404
    assert client.post(reverse("training-api:run-cancel", args=[queued.pk])).status_code == 404
    assert client.get(reverse("training-api:run-list")).json()["results"] == []
    client.force_login(creator)
    body = client.get(reverse("training-api:run-detail", args=[queued.pk])).json()
    assert body["status"] == "queued" and body["rank"] == 4 and len(body["dataset"]) == 4
    assert client.post(reverse("training-api:run-cancel", args=[queued.pk])).json()["status"] == "cancelled"
    response = client.post(reverse("training-api:run-cancel", args=[queued.pk]))
    assert response.status_code == 400 and "only a queued or running run" in response.json()["error"]["message"]
    curator = UserFactory(role="curator")
    client.force_login(curator)
    assert client.post(reverse("training-api:run-resume", args=[queued.pk])).json()["status"] == "queued"


def test_api_defaults_and_dataset_export(client, creator, album):
    client.force_login(creator)
    body = client.get(reverse("training-api:defaults")).json()
    assert (
        body["defaults"]["rank"] == 4
        and body["defaults"]["learning_rate"] == 1e-4
        and "alpha / rank" in body["help"]["alpha"]
    )
    response = client.get(reverse("training-api:dataset-export", args=[album.pk]) + "?trigger_word=crdz&repeats=3")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        assert "3_crdz/0004.txt" in archive.namelist()
    bad = client.get(reverse("training-api:dataset-export", args=[album_make(1).pk]) + "?trigger_word=crdz")
    assert bad.status_code == 400


def test_start_page_form_and_errors(client, creator, album):
    client.force_login(creator)
    url = reverse("training:run-start", args=[album.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert b"alpha / rank" in page.content and b'value="0.0001"' in page.content
    form = {
        "name": "Paged",
        "trigger_word": "crdz",
        "caption_source": "auto",
        "max_steps": 10,
        "save_every": 5,
        "learning_rate": "0.0001",
        "rank": 4,
        "alpha": 8,
        "dropout": 0.1,
        "resolution": 64,
        "batch_size": 1,
        "gradient_accumulation": 1,
        "base_model": "nope",
    }
    response = client.post(url, form)
    assert response.status_code == 200 and b"Unknown base model" in response.content
    form["base_model"] = ""
    response = client.post(url, form)
    run = TrainingRun.objects.get(name="Paged")
    assert response.status_code == 302 and response["Location"] == reverse("training:run-detail", args=[run.pk])
    assert UserFactory(role="viewer") and client.get(reverse("training:run-list")).status_code == 200


def test_run_page_shows_chart_checkpoints_and_controls(client, creator, queued, django_assert_max_num_queries):
    queued.status = TrainingRun.Status.CANCELLED
    queued.loss_history = [[step, 1.0 - step / 100] for step in range(1, 41)]
    queued.progress_done = 40
    queued.checkpoints = [{"step": 40, "file": "checkpoints/x.safetensors", "samples": []}]
    queued.save()
    client.force_login(creator)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("training:run-detail", args=[queued.pk]))
    html = page.content.decode()
    assert "<polyline" in html and "Resume from step 40" in html and "step 40 (.safetensors)" in html
    assert "hx-trigger" not in html  # a finished run does not poll
    viewer = UserFactory(role="viewer")
    client.force_login(viewer)
    assert client.get(reverse("training:run-detail", args=[queued.pk])).status_code == 404
    assert client.post(reverse("training:run-resume", args=[queued.pk])).status_code == 403


def test_loss_chart_scales_into_the_box():
    chart = loss_chart([[1, 2.0], [2, 1.0], [3, float("nan")], [4, 1.5]], 4)
    xs = [float(point.split(",")[0]) for point in chart["raw"].split()]
    assert chart["low"] == 1.0 and chart["high"] == 2.0 and max(xs) <= chart["right"]
    assert loss_chart([], 10) is None


def test_album_page_links_to_training_and_export(client, creator, album):
    client.force_login(creator)
    html = client.get(reverse("albums:album-detail", args=[album.pk])).content.decode()
    assert reverse("training:run-start", args=[album.pk]) in html
    export = reverse("training:dataset-export", args=[album.pk])
    assert export in html
    response = client.get(export)
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    client.force_login(UserFactory(role="viewer"))
    assert (
        reverse("training:run-start", args=[album.pk])
        not in client.get(reverse("albums:album-detail", args=[album.pk])).content.decode()
    )


def test_admin_lists_runs_read_only(admin_client, queued):
    page = admin_client.get(reverse("admin:training_trainingrun_changelist"))
    assert page.status_code == 200 and b"Cards" in page.content
    assert admin_client.get(reverse("admin:training_trainingrun_change", args=[queued.pk])).status_code == 200


def test_progress_partial_polls_while_active(client, creator, queued):
    queued.status, queued.phase = TrainingRun.Status.RUNNING, TrainingRun.Phase.TRAINING
    queued.progress_done, queued.eta_seconds, queued.steps_per_second = 250, 125.0, 6.0
    queued.loss_history = [[1, 0.5], [2, 0.4]]
    queued.save()
    client.force_login(creator)
    html = client.get(reverse("training:run-progress", args=[queued.pk])).content.decode()
    assert (
        'hx-trigger="every 2s"' in html
        and "about 2 min 05 s left" in html
        and "step <span data-step>250</span>/1000" in html
    )
    assert "Cancel (keeps the last checkpoint)" in html


def test_web_side_never_imports_torch():
    import os
    import subprocess
    import sys

    code = (
        "import django, sys; django.setup(); "
        "import training.views, training.api.views, training.tasks, training.management.commands.train_lora; "
        "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules, 'torch imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "imagineer.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_run_list_query_count_does_not_grow(client, creator, album, django_assert_max_num_queries, settings):
    settings.IMAGINEER_LIMIT_ACTIVE_TRAINING = 0  # five queued runs of one user, past the default limit
    for index in range(5):
        training_start(album=album, name=f"Run {index}", trigger_word="crdz", created_by=creator, enqueue=False)
    client.force_login(creator)
    with django_assert_max_num_queries(6):
        body = client.get(reverse("training-api:run-list")).json()
    assert body["count"] == 5 and body["results"][0]["album_name"] == album.name
    with django_assert_max_num_queries(8):
        assert client.get(reverse("training:run-list")).status_code == 200


@pytest.mark.parametrize("how", ["symlink", "dotdot"])
def test_checkpoint_and_sample_files_outside_media_root_answer_404(client, creator, queued, media_root, tmp_path, how):
    """A checkpoint or sample row pointing out of MEDIA_ROOT (a symlink there, or ``..``) is
    a missing file, as for images: 404, never the outside file and never a 500."""
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("not for download")
    if how == "symlink":
        (media_root / "checkpoints").mkdir()
        (media_root / "checkpoints" / "step-40.safetensors").symlink_to(secret)
        (media_root / "checkpoints" / "sample.png").symlink_to(secret)
        checkpoint, sample = "checkpoints/step-40.safetensors", "checkpoints/sample.png"
    else:
        checkpoint = sample = "../outside/secret.txt"
    queued.checkpoints = [{"step": 40, "file": checkpoint, "samples": [sample]}]
    queued.save(update_fields=["checkpoints"])
    client.force_login(creator)

    for url in (
        reverse("training:checkpoint-file", args=[queued.pk, 40]),
        reverse("training:sample-file", args=[queued.pk, 40, 1]),
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"not for download" not in b"".join(getattr(response, "streaming_content", [response.content]))
