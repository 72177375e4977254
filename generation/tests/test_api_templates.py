"""/api/batch-templates, .../generate, .../runs, .../runs/<run_id>."""

from __future__ import annotations

import pytest

from albums.models import Album
from generation.models import BatchGenerationRun, GenerationJob
from generation.services.runs import run_start
from imagineer.tests.factories import BatchTemplateFactory, BatchTemplateLoraFactory, LoraFactory

pytestmark = pytest.mark.django_db


def test_list_and_detail_with_rows_and_lora_stack(api_as):
    client = api_as("viewer")
    template = BatchTemplateFactory(name="Zodiac mini")
    BatchTemplateLoraFactory(template=template, lora=LoraFactory(name="stars"))
    body = client.get("/api/batch-templates").json()
    assert body["count"] == 1
    row = body["results"][0]
    assert (row["name"], row["row_count"], row["loras"][0]["name"]) == ("Zodiac mini", 3, "stars")
    assert "rows" not in row
    detail = client.get(f"/api/batch-templates/{template.pk}").json()
    assert detail["columns"] == ["sign", "element"]
    assert detail["rows"][0] == {"sign": "Aries", "element": "fire"}
    assert detail["prompt_template"] == "{sign}, {element} element"
    assert client.get("/api/batch-templates/999999").status_code == 404


def test_generate_starts_a_run_and_answers_202_with_its_url(api_as):
    client = api_as("creator")
    template = BatchTemplateFactory()
    response = client.post(
        f"/api/batch-templates/{template.pk}/generate",
        {"theme": "art deco", "album_name": "Deco signs", "overrides": {"steps": 3, "seed": 5, "seed_policy": "fixed"}},
        format="json",
    )
    assert response.status_code == 202, response.content
    run = BatchGenerationRun.objects.get()
    assert response["Location"] == f"http://testserver/api/batch-templates/{template.pk}/runs/{run.pk}"
    body = response.json()
    assert (body["id"], body["status"], body["total_items"], body["theme"]) == (run.pk, "queued", 3, "art deco")
    assert run.album.name == "Deco signs" and run.album.source_type == Album.SourceType.BATCH_GENERATION
    assert set(run.jobs.values_list("seed", flat=True)) == {5}
    assert set(run.jobs.values_list("steps", flat=True)) == {3}


def test_the_original_field_name_user_theme_still_works(api_as):
    template = BatchTemplateFactory()
    response = api_as("creator").post(
        f"/api/batch-templates/{template.pk}/generate", {"user_theme": "gothic"}, format="json"
    )
    assert response.status_code == 202
    assert BatchGenerationRun.objects.get().theme == "gothic"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "theme"),
        ({"theme": ["deco"]}, "theme"),
        ({"theme": "x" * 501}, "theme"),
        ({"theme": "t", "overrides": {"steps": -1}}, "overrides.steps"),
        ({"theme": "t", "overrides": {"width": 100}}, "overrides.width"),
        ({"theme": "t", "overrides": {"guidance_scale": "lots"}}, "overrides.guidance_scale"),
        ({"theme": "t", "overrides": {"seed_policy": "chaos"}}, "overrides.seed_policy"),
        ({"theme": "t", "overrides": {"lora_weights": {"missing": 0.5}}}, "lora_weights"),
        ({"theme": "t", "overrides": "fast"}, "overrides"),
        (
            {"theme": "t" * 400 + " " + "y" * 99, "overrides": {"negative_prompt": "n" * 2001}},
            "overrides.negative_prompt",
        ),
    ],
)
def test_bad_run_requests_are_400s(api_as, payload, field):
    template = BatchTemplateFactory()
    response = api_as("creator").post(f"/api/batch-templates/{template.pk}/generate", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"], response.json()
    assert not BatchGenerationRun.objects.exists()


def test_bad_json_is_a_400(api_as):
    template = BatchTemplateFactory()
    response = api_as("creator").generic(
        "POST", f"/api/batch-templates/{template.pk}/generate", "{theme:", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_a_prompt_over_the_limit_is_refused_before_anything_is_written(api_as, settings):
    settings.IMAGINEER_MAX_PROMPT_CHARS = 60
    template = BatchTemplateFactory()
    response = api_as("creator").post(
        f"/api/batch-templates/{template.pk}/generate", {"theme": "an extremely long theme " * 3}, format="json"
    )
    assert response.status_code == 400
    assert "limit" in response.json()["error"]["message"]
    assert not BatchGenerationRun.objects.exists() and not Album.objects.exists()


def test_generate_permissions_and_unknown_template(api_as):
    template = BatchTemplateFactory()
    url = f"/api/batch-templates/{template.pk}/generate"
    assert api_as(None).post(url, {"theme": "t"}, format="json").status_code == 401
    assert api_as("viewer").post(url, {"theme": "t"}, format="json").status_code == 403
    assert (
        api_as("creator").post("/api/batch-templates/999999/generate", {"theme": "t"}, format="json").status_code == 404
    )


def test_runs_list_and_progress(api_as):
    client = api_as("creator")
    template = BatchTemplateFactory()
    run = run_start(template=template, theme="deco", overrides={"steps": 2}, created_by=client.user)
    other = run_start(template=BatchTemplateFactory(), theme="other")
    GenerationJob.objects.filter(run=run, row_index=0).update(status=GenerationJob.Status.FAILED, error="boom")

    runs = client.get(f"/api/batch-templates/{template.pk}/runs").json()
    assert [row["id"] for row in runs["results"]] == [run.pk]
    assert client.get(f"/api/batch-templates/{template.pk}/runs", {"status": "nope"}).status_code == 400

    body = client.get(f"/api/batch-templates/{template.pk}/runs/{run.pk}").json()
    progress = body["progress"]
    assert (progress["total"], progress["failed"], progress["queued"]) == (3, 1, 2)
    assert progress["items"][0] == {
        "row_index": 0,
        "status": "failed",
        "step": 0,
        "image_id": None,
        "error": "boom",
        "attempts": 0,
        "attempt_limit": 3,
    }
    assert "eta_seconds" in progress and progress["current_item"] is None
    assert body["album_url"].endswith(f"/api/albums/{run.album_id}")
    assert client.get(f"/api/batch-templates/{template.pk}/runs/{other.pk}").status_code == 404
    assert client.get(f"/api/batch-templates/999999/runs/{run.pk}").status_code == 404
    assert client.get("/api/batch-templates/999999/runs").status_code == 404


def test_cancel_and_retry_a_run(api_as):
    client = api_as("creator")
    template = BatchTemplateFactory()
    run = run_start(template=template, theme="deco", created_by=client.user)
    url = f"/api/batch-templates/{template.pk}/runs/{run.pk}"
    assert api_as("creator").delete(url).status_code == 403
    response = client.delete(url)
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    retried = client.post(f"{url}/retry")
    assert retried.status_code == 202, retried.content
    assert retried.json()["status"] in {"queued", "running"}
    assert GenerationJob.objects.filter(run=run, status=GenerationJob.Status.QUEUED).count() == 3


@pytest.mark.parametrize("rows", [3, 30])
def test_template_and_run_queries_are_constant(api_as, django_assert_num_queries, rows):
    client = api_as("viewer")
    template = None
    for _ in range(rows):
        template = BatchTemplateFactory()
        BatchTemplateLoraFactory(template=template)
    runs = [run_start(template=template, theme=f"t{index}") for index in range(min(rows, 10))]
    # session, user, count, templates, lora stacks
    with django_assert_num_queries(5):
        assert len(client.get("/api/batch-templates", {"page_size": 50}).json()["results"]) == rows
    # session, user, template, the user's permissions (2), lora stack
    with django_assert_num_queries(6):
        client.get(f"/api/batch-templates/{template.pk}")
    # session, user, template, count, runs
    with django_assert_num_queries(5):
        client.get(f"/api/batch-templates/{template.pk}/runs")
    # session, user, template, run, the user's permissions (2), its jobs
    with django_assert_num_queries(7):
        client.get(f"/api/batch-templates/{template.pk}/runs/{runs[0].pk}")


@pytest.mark.parametrize(
    "form",
    [
        {"theme": "deco", "overrides": '{"steps": 3, "width": 64, "seed": 5, "seed_policy": "fixed"}'},
        {
            "theme": "deco",
            "overrides.steps": "3",
            "overrides.width": "64",
            "overrides.seed": "5",
            "overrides.seed_policy": "fixed",
        },
    ],
    ids=["json-field", "dotted-fields"],
)
def test_multipart_overrides_are_applied(api_as, form):
    """A form (multipart) body's overrides used to be dropped: a 202 with the template's defaults."""
    template = BatchTemplateFactory(steps=20, width=512)
    response = api_as("creator").post(f"/api/batch-templates/{template.pk}/generate", form, format="multipart")
    assert response.status_code == 202, response.content
    jobs = GenerationJob.objects.filter(run__template=template)
    assert {(job.steps, job.width, job.seed) for job in jobs} == {(3, 64, 5)}


@pytest.mark.parametrize(
    ("form", "words"),
    [
        ({"theme": "deco", "overrides[steps]": "3"}, "'overrides[steps]' is not understood. In a form, send overrides"),
        ({"theme": "deco", "overrides": "steps=3"}, "The overrides field is not valid JSON"),
        ({"theme": "deco", "overrides": "[3]"}, "must hold a JSON object"),
        ({"theme": "deco", "overrides": '{"steps": 0}'}, "overrides.steps"),
        ({"theme": "deco", "overrides": "{}", "overrides.steps": "3"}, "not both"),
    ],
)
def test_multipart_overrides_that_cannot_be_read_are_400s_that_say_how(api_as, form, words):
    template = BatchTemplateFactory()
    response = api_as("creator").post(f"/api/batch-templates/{template.pk}/generate", form, format="multipart")
    assert response.status_code == 400
    error = response.json()["error"]
    assert words in error["message"] or any(words in field for field in error["fields"])
    assert not BatchGenerationRun.objects.exists()
