"""Hostile inputs against a live server: what answers 5xx and what is wrongly accepted, by category.

    .venv/bin/python bench/hostile_inputs.py                      # this checkout
    .venv/bin/python bench/hostile_inputs.py --checkout /tmp/main # another checkout of the app

Sets up a throwaway PostgreSQL database (``--database``, dropped and made again), a media
folder and users in the checkout under test, starts it with gunicorn on 127.0.0.1 (DEBUG off,
no worker: work stays queued) and a small hostile web site on 127.0.0.1 for the scraper, then
fires each category of issue 12 at it and prints one table:

    category | inputs tried | 5xx | wrongly accepted

"Wrongly accepted" is an answer that lets the input through where it must be refused (a
leaked token reaching an account page, a crafted LoRA stored, a NUL character reaching the
database, a run past the per-user limit...), or for the sign-in row the owner being locked
out; each category's docstring says what counts. Every request has a timeout; nothing
leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.server
import json
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests

HERE = Path(__file__).resolve().parent.parent
TIMEOUT = 30
PASSWORD = "pw-hostile-123"


@dataclass
class Row:
    category: str
    tried: int = 0
    server_errors: int = 0
    wrong: int = 0
    notes: list[str] = field(default_factory=list)

    def answer(self, response: requests.Response | None, *, wrong: bool, note: str = "") -> None:
        self.tried += 1
        if response is not None and response.status_code >= 500:
            self.server_errors += 1
            self.notes.append(f"5xx: {note or f'{response.request.method} {response.url}'}")
        if wrong:
            self.wrong += 1
            self.notes.append(f"wrong: {note or (f'{response.request.method} {response.url}' if response else '')}")


# --- the server under test ---------------------------------------------------------------


@dataclass
class Server:
    checkout: Path
    env: dict[str, str]
    url: str
    media: Path
    database_url: str
    ids: dict[str, Any]
    process: subprocess.Popen | None = None

    def manage(
        self, *args: str, extra_env: dict[str, str] | None = None, timeout: int = 300
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.checkout,
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def query(self, sql: str, *params: Any) -> list[tuple]:
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            cursor = connection.execute(sql, params)
            return cursor.fetchall() if cursor.description else []


SETUP = r"""
import json, os
from pathlib import Path
from django.conf import settings
from accounts.services import token_create
from generation.services.builtin import builtin_templates_load
from generation.models import BatchTemplate
from imagineer.tests.factories import AlbumImageFactory, UserFactory
from training.models import TrainingRun
builtin_templates_load()
creator = UserFactory(username="creator", role="creator", password=os.environ["BENCH_PASSWORD"])
curator = UserFactory(username="curator", role="curator", is_staff=True, is_superuser=True, password=os.environ["BENCH_PASSWORD"])
owner = UserFactory(username="owner", role="viewer", password=os.environ["BENCH_PASSWORD"])
membership = AlbumImageFactory(album__created_by=creator, image__created_by=creator)
media = Path(settings.MEDIA_ROOT)
(media / "checkpoints").mkdir(parents=True, exist_ok=True)
outside = media.parent / "outside-secret.txt"
outside.write_text("not for download")
for name in ("evil.safetensors", "evil.png"):
    (media / "checkpoints" / name).symlink_to(outside)
training = TrainingRun.objects.create(
    album=membership.album, name="bench", trigger_word="bnch", base_model="tiny", learning_rate=1e-4, rank=4,
    alpha=4.0, dropout=0.0, max_steps=10, save_every=5, resolution=64, batch_size=1, gradient_accumulation=1, seed=1,
    created_by=creator, status="failed",
    checkpoints=[
        {"step": 5, "file": "checkpoints/evil.safetensors", "samples": ["checkpoints/evil.png"]},
        {"step": 10, "file": "../outside-secret.txt", "samples": ["../outside-secret.txt"]},
    ],
)
print("BENCH-IDS " + json.dumps({
    "creator_token": token_create(user=creator, name="bench")[1],
    "curator_token": token_create(user=curator, name="bench")[1],
    "album": membership.album_id,
    "image": membership.image_id,
    "deck": BatchTemplate.objects.get(slug="card_deck").pk,
    "training": training.pk,
}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server_running(checkout: Path, database: str) -> Iterator[Server]:
    base = Path(tempfile.mkdtemp(prefix="imagineer-hostile-"))
    admin_url = "postgres://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{database}"')
    database_url = f"postgres://postgres@127.0.0.1:5432/{database}"
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("IMAGINEER_", "DJANGO_", "REDIS"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "imagineer.settings",
            "DATABASE_URL": database_url,
            "MEDIA_ROOT": str(base / "media"),
            "IMAGINEER_VAR_DIR": str(base / "var"),
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "IMAGINEER_HTTPS": "false",
            "IMAGINEER_SCRAPE_ALLOW_LOOPBACK": "true",
            "IMAGINEER_SCRAPE_HOST_DELAY_MS": "0",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "BENCH_PASSWORD": PASSWORD,
            "PYTHONUNBUFFERED": "1",
        }
    )
    (base / "media").mkdir(parents=True)
    server = Server(checkout, env, f"http://127.0.0.1:{port}", base / "media", database_url, {})
    try:
        for args in (("migrate", "--noinput"), ("shell", "-c", SETUP)):
            result = server.manage(*args)
            if result.returncode != 0:
                raise RuntimeError(f"manage.py {args[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        server.ids = json.loads(result.stdout.split("BENCH-IDS ", 1)[1].splitlines()[0])
        log = (base / "gunicorn.log").open("w")
        server.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "imagineer.wsgi", "--bind", f"127.0.0.1:{port}",
             "--workers", "1", "--threads", "16", "--timeout", "120"],
            cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{server.url}/api/health", timeout=5).status_code < 600:
                    break
            time.sleep(0.3)
        else:
            raise RuntimeError(f"the server did not start:\n{(base / 'gunicorn.log').read_text()[-3000:]}")
        yield server
    finally:
        if server.process is not None:
            server.process.terminate()
            server.process.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def signed_in(server: Server, username: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{server.url}/accounts/login/", timeout=TIMEOUT)
    token = csrf_token(page.text)
    response = session.post(
        f"{server.url}/accounts/login/",
        {"login": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
        timeout=TIMEOUT,
        allow_redirects=False,
    )
    if response.status_code != 302:
        raise RuntimeError(f"could not sign in as {username}: {response.status_code}")
    return session


def csrf_of(session: requests.Session, url: str) -> str:
    page = session.get(url, timeout=TIMEOUT)
    return csrf_token(page.text)


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    if found is None:
        raise RuntimeError("no CSRF token on the page")
    return found.group(1)


# --- a hostile web site for the scraper --------------------------------------------------


class HostileSite(http.server.BaseHTTPRequestHandler):
    pages = {
        "/robots.txt": ("text/plain", b"User-agent: *\nDisallow: /private/\n"),
        "/private/all": ("text/html", b"<p>nothing for robots</p>"),
        "/broken/": ("text/html", b'<img src="/broken/a.png"><img src="/broken/b.png">'),
        "/broken/a.png": ("image/png", b"<html>not an image</html>"),
        "/broken/b.png": ("image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64),
    }

    def do_GET(self) -> None:
        content_type, body = self.pages.get(self.path, ("text/plain", b"missing"))
        self.send_response(200 if self.path in self.pages else 404)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


# --- crafted LoRA files ------------------------------------------------------------------

DOWN = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight"
UP = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight"
ALPHA = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.alpha"


def safetensors(header: Any, data: bytes = b"") -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def lora(
    *, rank: int = 4, metadata: Any = None, tail: bytes = b"", entries: dict[str, Any] | None = None, **replace: Any
) -> bytes:
    down, up = rank * 768 * 4, 320 * rank * 4
    header: dict[str, Any] = {
        DOWN: {"dtype": "F32", "shape": [rank, 768], "data_offsets": [0, down]},
        UP: {"dtype": "F32", "shape": [320, rank], "data_offsets": [down, down + up]},
    }
    for name, value in {**replace, **(entries or {})}.items():
        header[{"down": DOWN, "alpha": ALPHA}.get(name, name)] = value
    if metadata is not None:
        header["__metadata__"] = metadata
    return safetensors(header, bytes(down + up) + tail)


def crafted_loras() -> dict[str, bytes]:
    down = {"dtype": "F32", "data_offsets": [0, 4 * 768 * 4]}
    return {
        "alpha nan": lora(metadata={"ss_network_alpha": "nan"}),
        "alpha 1e999": lora(metadata={"ss_network_alpha": "1e999"}),
        "alpha [1]": lora(metadata={"ss_network_alpha": [1]}),
        "alpha word": lora(metadata={"ss_network_alpha": "abc"}),
        "metadata 'x'": lora(metadata="x"),
        "metadata 5": lora(metadata=5),
        "shape [10**12,768]": lora(down={**down, "shape": [10**12, 768]}),
        "shape [2**40,2**40]": lora(down={**down, "shape": [2**40, 2**40]}),
        "shape 'abc'": lora(down={**down, "shape": "abc"}),
        "shape [4,'x']": lora(down={**down, "shape": [4, "x"]}),
        "shape [-4,768]": lora(down={**down, "shape": [-4, 768]}),
        "tensor entry 5": lora(entries={"lora_unet_x.lora_down.weight": 5}),
        "entry without shape": lora(entries={"x.lora_down.weight": {"dtype": "F32", "data_offsets": [0, 0]}}),
        "dtype list": lora(down={**down, "shape": [4, 768], "dtype": ["F32"]}),
        ".alpha bogus offsets": lora(alpha={"dtype": "F32", "shape": [], "data_offsets": [2**62, 2**62 + 4]}),
        "offsets past end": lora(down={**down, "shape": [4, 768], "data_offsets": [0, 10**9]}),
        "header length huge": struct.pack("<Q", 2**40) + b"{}",
        "header not json": safetensors(b"{not json}"),
        "header deep nesting": safetensors(b"[" * 100_000 + b"]" * 100_000),
        "header a list": safetensors([1, 2]),
    }


# --- the categories ----------------------------------------------------------------------


def schema_race(server: Server) -> Row:
    """Found while fuzzing: eight first requests for /api/schema/ at the same moment (run first,
    while the server has not generated the schema yet). Wrong: none; 5xx: each one that failed."""
    row = Row("first /api/schema/ requests at once")
    barrier = threading.Barrier(8)

    def fetch(_: int) -> requests.Response:
        barrier.wait(timeout=60)
        headers = {"Authorization": f"Token {server.ids['curator_token']}"}
        return requests.get(f"{server.url}/api/schema", headers=headers, timeout=120)

    with ThreadPoolExecutor(max_workers=8) as pool:
        for response in pool.map(fetch, range(8)):
            row.answer(response, wrong=False, note=f"GET /api/schema/ -> {response.status_code}")
    return row


def token_scope(server: Server) -> Row:
    """Item 1. With only a leaked token (and a self-made CSRF cookie/token pair, which a script
    can always send): every account page, admin page and page form. Wrong: any answer but a
    refusal (4xx), or a CSRF cookie handed to a token request."""
    row = Row("1 token outside the API (account takeover)")
    forged = "a" * 32
    for token, method, path, data in [
        ("creator", "GET", "/accounts/email/", None),
        ("creator", "POST", "/accounts/email/", {"action_add": "", "email": "attacker@evil.test"}),
        ("creator", "POST", "/accounts/password/reset/", {"email": "attacker@evil.test"}),
        ("creator", "POST", "/accounts/password/change/", {"oldpassword": "x", "password1": "Zz-9" * 4, "password2": "Zz-9" * 4}),
        ("creator", "POST", "/accounts/tokens/", {"name": "persist"}),
        ("creator", "GET", "/accounts/", None),
        ("creator", "POST", "/generate/", {"prompt": "owl", "width": 64, "height": 64, "steps": 2, "guidance_scale": 7}),
        ("creator", "GET", "/generate/", None),
        ("creator", "GET", "/albums/", None),
        ("creator", "POST", "/preferences/nsfw-blur", {"blur": "off"}),
        ("curator", "GET", "/admin/", None),
        ("curator", "POST", "/admin/auth/user/add/", {"username": "mole", "password1": "x", "password2": "x"}),
        ("curator", "GET", "/admin/auth/user/", None),
    ]:  # fmt: skip
        headers = {"Authorization": f"Token {server.ids[f'{token}_token']}", "Referer": server.url + path}
        response = requests.request(
            method, server.url + path, data={**(data or {}), "csrfmiddlewaretoken": forged}, headers=headers,
            cookies={"csrftoken": forged}, timeout=TIMEOUT, allow_redirects=False,
        )  # fmt: skip
        wrong = response.status_code < 400 or "csrftoken" in response.cookies
        row.answer(response, wrong=wrong, note=f"{method} {path} -> {response.status_code}")
    return row


def lora_uploads(server: Server) -> Row:
    """Item 2. 36 uploads at once of one file name with different content. Wrong: a 201 whose
    row's file is missing or holds other bytes, or a file left behind by a refusal."""
    row = Row("2 concurrent same-name LoRA uploads")
    barrier = threading.Barrier(36)

    def upload(index: int) -> tuple[requests.Response, str]:
        content = lora(rank=1 + index % 8, tail=f"#{index}".encode())
        barrier.wait(timeout=60)
        response = requests.post(
            f"{server.url}/api/loras",
            headers={"Authorization": f"Token {server.ids['creator_token']}"},
            files={"file": ("style.safetensors", content)},
            data={"name": f"style {index}"},
            timeout=120,
        )
        return response, hashlib.sha256(content).hexdigest()

    with ThreadPoolExecutor(max_workers=36) as pool:
        answers = list(pool.map(upload, range(36)))
    rows = dict(server.query("SELECT sha256, file FROM generation_lora"))
    lora_root = server.media / "loras"
    for response, sha in answers:
        if response.status_code == 201:
            path = lora_root / rows.get(sha, "missing")
            intact = path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha
            row.answer(response, wrong=not intact, note=f"201 for {sha[:8]} but its file is missing or changed")
        else:
            row.answer(response, wrong=False)
    files = [path for path in lora_root.rglob("*") if path.is_file()]
    strays = len(files) - len(rows)
    if strays > 0:
        row.wrong += strays
        row.notes.append(f"wrong: {strays} files no row points at")
    server.query("DELETE FROM generation_lora")
    return row


def crafted_headers(server: Server) -> Row:
    """Item 3. Crafted safetensors headers, then the LoRA list and each stored row. Wrong: a
    malformed file stored (201)."""
    row = Row("3 crafted safetensors headers")
    headers = {"Authorization": f"Token {server.ids['creator_token']}"}
    created = []
    for name, content in crafted_loras().items():
        response = requests.post(
            f"{server.url}/api/loras", headers=headers, files={"file": ("x.safetensors", content)},
            data={"name": f"crafted {name}"}, timeout=TIMEOUT,
        )  # fmt: skip
        row.answer(response, wrong=response.status_code == 201, note=f"{name} -> {response.status_code}")
        if response.status_code == 201:
            created.append(response.json()["id"])
    long_name = "x" * 300 + ".safetensors"
    response = requests.post(
        f"{server.url}/api/loras", headers=headers, files={"file": (long_name, lora(tail=b"long"))}, timeout=TIMEOUT
    )
    row.answer(response, wrong=False, note=f"300-character file name -> {response.status_code}")
    for path in ["/api/loras", *(f"/api/loras/{pk}" for pk in created)]:
        response = requests.get(server.url + path, headers=headers, timeout=TIMEOUT)
        row.answer(response, wrong=False, note=f"GET {path} -> {response.status_code}")
    server.query("DELETE FROM generation_lora")
    return row


def nul_characters(server: Server) -> Row:
    """Item 5. NUL in paths, queries, forms, JSON and an admin CSV. Wrong: a 2xx/3xx."""
    row = Row("5 NUL characters")
    api = {"Authorization": f"Token {server.ids['curator_token']}"}
    album = server.ids["album"]
    for path in ["/api/batches/1%00", "/api/labeling/tasks/1%00", "/api/albums?search=%00", "/api/images?tag=a%00",
                 f"/api/albums/{album}?x%00=1", "/api/jobs?status=%00", "/api/scrape-jobs?page=1%00"]:  # fmt: skip
        response = requests.get(server.url + path, headers=api, timeout=TIMEOUT)
        row.answer(response, wrong=response.status_code < 400, note=f"GET {path} -> {response.status_code}")
    for body in ['{"prompt": "owl\\u0000"}', '{"prompt": "owl", "loras": [{"name": "a\\u0000"}]}']:
        response = requests.post(
            f"{server.url}/api/generate",
            data=body,
            headers={**api, "Content-Type": "application/json"},
            timeout=TIMEOUT,
        )
        row.answer(
            response, wrong=response.status_code < 400, note=f"POST /api/generate {body} -> {response.status_code}"
        )
    response = requests.patch(
        f"{server.url}/api/config", data='{"generation": {"negative_prompt": "x\\u0000"}}',
        headers={**api, "Content-Type": "application/json"}, timeout=TIMEOUT,
    )  # fmt: skip
    row.answer(response, wrong=response.status_code < 400, note=f"PATCH /api/config -> {response.status_code}")
    session = signed_in(server, "curator")
    for path in [f"/albums/{album}/?label=%00", "/albums/?q=%00", "/jobs/?status=%00"]:
        response = session.get(server.url + path, timeout=TIMEOUT)
        row.answer(response, wrong=response.status_code < 400, note=f"GET {path} -> {response.status_code}")
    token = csrf_of(session, f"{server.url}/generate/")
    response = session.post(
        f"{server.url}/generate/", {"prompt": "owl\x00", "width": 64, "height": 64, "steps": 2, "guidance_scale": 7,
                                    "csrfmiddlewaretoken": token}, timeout=TIMEOUT, allow_redirects=False,
    )  # fmt: skip
    row.answer(response, wrong=response.status_code < 400, note=f"POST /generate/ -> {response.status_code}")
    add = f"{server.url}/admin/generation/batchtemplate/add/"
    form = admin_template_form(csrf_of(session, add), slug="nul-deck")
    response = session.post(
        add, data=form, files={"csv_file": ("deck.csv", b"value,suit\nAce,Spa\x00des\n", "text/csv")},
        timeout=TIMEOUT, allow_redirects=False,
    )  # fmt: skip
    row.answer(response, wrong=response.status_code == 302, note=f"admin CSV with \\x00 -> {response.status_code}")
    return row


def admin_template_form(token: str, *, slug: str) -> dict[str, str]:
    return {
        "csrfmiddlewaretoken": token, "name": slug, "slug": slug, "description": "", "base_prompt": "a card",
        "prompt_template": "the {value} of {suit}", "style_suffix": "", "negative_prompt": "", "example_theme": "x",
        "width": "512", "height": "512", "steps": "20", "guidance_scale": "7.5", "csv_text": "",
        "lora_stack-TOTAL_FORMS": "0", "lora_stack-INITIAL_FORMS": "0", "lora_stack-MIN_NUM_FORMS": "0",
        "lora_stack-MAX_NUM_FORMS": "1000",
    }  # fmt: skip


def media_symlinks(server: Server) -> Row:
    """Item 6. Checkpoint and sample rows pointing out of MEDIA_ROOT (a symlink, and ``..``).
    Wrong: the outside file served."""
    row = Row("6 checkpoint/sample files out of MEDIA_ROOT")
    session = signed_in(server, "creator")
    run = server.ids["training"]
    for path in [f"/training/runs/{run}/checkpoints/5.safetensors", f"/training/runs/{run}/checkpoints/5/samples/1.png",
                 f"/training/runs/{run}/checkpoints/10.safetensors", f"/training/runs/{run}/checkpoints/10/samples/1.png"]:  # fmt: skip
        response = session.get(server.url + path, timeout=TIMEOUT)
        leaked = response.status_code == 200 and b"not for download" in response.content
        row.answer(response, wrong=leaked, note=f"GET {path} -> {response.status_code}")
    return row


def multipart_overrides(server: Server) -> Row:
    """Item 7. Overrides in a multipart body. Wrong: a 202 whose run ignored them."""
    row = Row("7 multipart overrides")
    headers = {"Authorization": f"Token {server.ids['curator_token']}"}
    deck = server.ids["deck"]
    for form in [
        {"theme": "deco", "overrides": '{"steps": 3, "width": 64, "height": 64}'},
        {"theme": "deco", "overrides[steps]": "3", "overrides[width]": "64", "overrides[height]": "64"},
        {"theme": "deco", "overrides": "steps=3"},
    ]:
        before = server.query("SELECT coalesce(max(id), 0) FROM generation_batchgenerationrun")[0][0]
        response = requests.post(
            f"{server.url}/api/batch-templates/{deck}/generate", headers=headers,
            files={name: (None, value) for name, value in form.items()}, timeout=TIMEOUT,
        )  # fmt: skip
        steps = server.query("SELECT DISTINCT steps FROM generation_generationjob WHERE run_id > %s", before)
        ignored = response.status_code == 202 and steps != [(3,)]
        row.answer(response, wrong=ignored, note=f"{list(form)} -> {response.status_code}, steps {steps}")
    server.query("UPDATE generation_batchgenerationrun SET status = 'cancelled'")
    server.query("UPDATE generation_generationjob SET status = 'cancelled'")
    return row


# Something a page makes the browser fetch (not a link to follow) from another host.
THIRD_PARTY = re.compile(
    rb"""<(?:script|img|iframe)\b[^>]*\bsrc=["']https?://(?!127\.0\.0\.1|localhost)"""
    rb"""|<link\b[^>]*\bhref=["']https?://(?!127\.0\.0\.1|localhost)"""
)


def browser_policy(server: Server) -> Row:
    """Item 8. Every kind of page. Wrong: no Content-Security-Policy (or one allowing inline
    script), no Permissions-Policy, or a page that loads something from another host."""
    row = Row("8 CSP / Permissions-Policy / third-party assets")
    session = signed_in(server, "curator")
    album, template = server.ids["album"], server.ids["deck"]
    for path in ["/", "/albums/", f"/albums/{album}/", "/templates/", "/generate/", "/jobs/", "/training/",
                 "/scrape/", "/accounts/", "/admin/", "/admin/generation/batchtemplate/", "/api/albums",
                 f"/api/batch-templates/{template}", "/api/schema/swagger-ui", "/api/schema/redoc"]:  # fmt: skip
        response = session.get(server.url + path, timeout=TIMEOUT, headers={"Accept": "text/html"})
        policy = response.headers.get("Content-Security-Policy", "")
        weak = not policy or "'unsafe-inline'" in policy.split("script-src", 1)[-1].split(";", 1)[0]
        wrong = weak or "Permissions-Policy" not in response.headers or bool(THIRD_PARTY.search(response.content))
        row.answer(response, wrong=wrong, note=f"GET {path}: CSP {'set' if policy else 'missing'}")
    return row


def scraping(server: Server, site: str) -> Row:
    """Item 9 and the fec0::/10 check. Scrapes whose every URL is refused, from the command and
    the API; start URLs in forbidden address ranges. Wrong: exit status 0 (or 'succeeded') when
    nothing was fetched because of errors, a server path in a message, a forbidden address accepted."""
    row = Row("9 scrape errors + forbidden addresses")
    for number, path in enumerate(("/private/all", "/broken/")):
        result = server.manage("scrape", f"{site}{path}", "--album", f"refused {number}", "--min-size", "8")
        messages = " ".join(
            str(value) for (value,) in server.query("SELECT errors::text || ' ' || error FROM albums_scrapejob")
        )
        leaked = str(server.media) in messages or ".part" in messages
        row.answer(
            None, wrong=result.returncode == 0 or leaked, note=f"manage.py scrape {path}: exit {result.returncode}"
        )
    headers = {"Authorization": f"Token {server.ids['curator_token']}"}
    for url in ["http://[fec0::1]/", "http://[feff:ffff::1]/", "http://10.0.0.1/", "http://169.254.169.254/",
                "http://[::ffff:10.0.0.1]/", "http://[fd00::1]/", "http://0.0.0.0/", "file:///etc/passwd"]:  # fmt: skip
        response = requests.post(
            f"{server.url}/api/scrape-jobs", json={"start_urls": [url], "album_name": "ssrf"}, headers=headers,
            timeout=TIMEOUT,
        )  # fmt: skip
        row.answer(response, wrong=response.status_code < 400, note=f"scrape {url} -> {response.status_code}")
    server.query("UPDATE albums_scrapejob SET status = 'cancelled'")
    return row


def limits(server: Server) -> Row:
    """Item 11. A creator starts 12 runs of the 54-card deck, then 10 single images, at once;
    an admin CSV of 5,000 rows. Wrong: runs past 5 queued at once (the new default), a template
    of more than 1,000 rows saved."""
    row = Row("11 queued-work limits, template size")
    headers = {"Authorization": f"Token {server.ids['creator_token']}"}
    accepted = 0
    for _ in range(12):
        response = requests.post(
            f"{server.url}/api/batch-templates/{server.ids['deck']}/generate", json={"theme": "flood"},
            headers=headers, timeout=TIMEOUT,
        )  # fmt: skip
        accepted += response.status_code == 202
        row.answer(response, wrong=response.status_code == 202 and accepted > 5, note=f"run {accepted}")
    session = signed_in(server, "curator")
    add = f"{server.url}/admin/generation/batchtemplate/add/"
    csv = "value,suit\n" + "".join(f"v{n},s\n" for n in range(5000))
    response = session.post(
        add, data=admin_template_form(csrf_of(session, add), slug="huge-deck"),
        files={"csv_file": ("huge.csv", csv.encode(), "text/csv")}, timeout=TIMEOUT, allow_redirects=False,
    )  # fmt: skip
    row.answer(response, wrong=response.status_code == 302, note=f"5,000-row template -> {response.status_code}")
    server.query("UPDATE generation_batchgenerationrun SET status = 'cancelled'")
    server.query("UPDATE generation_generationjob SET status = 'cancelled'")
    return row


def sign_in_lockout(server: Server) -> Row:
    """Sign-in. Five wrong passwords for an account, then its owner with the right one a few
    seconds later. Wrong: the owner refused (locked out)."""
    row = Row("sign-in lockout of the owner")
    attacker = requests.Session()
    for _ in range(5):
        token = csrf_of(attacker, f"{server.url}/accounts/login/")
        response = attacker.post(
            f"{server.url}/accounts/login/", {"login": "owner", "password": "wrong", "csrfmiddlewaretoken": token},
            timeout=TIMEOUT, allow_redirects=False,
        )  # fmt: skip
        row.answer(response, wrong=response.status_code == 302, note="a wrong password accepted")
    time.sleep(3)
    owner = requests.Session()
    token = csrf_of(owner, f"{server.url}/accounts/login/")
    response = owner.post(
        f"{server.url}/accounts/login/", {"login": "owner", "password": PASSWORD, "csrfmiddlewaretoken": token},
        timeout=TIMEOUT, allow_redirects=False,
    )  # fmt: skip
    row.answer(response, wrong=response.status_code != 302, note=f"owner after 3 s -> {response.status_code}")
    return row


def secret_key(server: Server) -> Row:
    """Settings. Production start-up (DEBUG off) with a short SECRET_KEY. Wrong: it starts."""
    row = Row("short SECRET_KEY in production")
    for key in ("short", "x" * 49, "k" * 60):
        result = subprocess.run(
            [sys.executable, "-c", "import django; django.setup()"], cwd=server.checkout,
            env={**server.env, "SECRET_KEY": key}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        row.answer(None, wrong=result.returncode == 0, note=f"SECRET_KEY of {len(key)} characters started")
    return row


CATEGORIES: list[Callable[..., Row]] = [
    schema_race, token_scope, lora_uploads, crafted_headers, nul_characters, media_symlinks, multipart_overrides,
    browser_policy, scraping, limits, sign_in_lockout, secret_key,
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", type=Path, default=HERE, help="the app to attack (default: this checkout)")
    parser.add_argument("--database", default="imagineer_sec_bench", help="throwaway database (dropped first)")
    parser.add_argument("--verbose", action="store_true", help="list each wrong or 5xx answer")
    args = parser.parse_args()
    site_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HostileSite)
    threading.Thread(target=site_server.serve_forever, daemon=True).start()
    site = f"http://127.0.0.1:{site_server.server_address[1]}"
    rows = []
    with server_running(args.checkout.resolve(), args.database) as server:
        for category in CATEGORIES:
            started = time.monotonic()
            row = category(server, site) if category is scraping else category(server)
            rows.append(row)
            print(f"  {row.category}: {time.monotonic() - started:.1f} s", file=sys.stderr)
    site_server.shutdown()
    width = max(len(row.category) for row in rows)
    print(f"\nhostile inputs against {args.checkout.resolve()}\n")
    print(f"{'category':<{width}} | inputs tried | 5xx | wrongly accepted")
    print(f"{'-' * width}-|--------------|-----|-----------------")
    for row in rows:
        print(f"{row.category:<{width}} | {row.tried:>12} | {row.server_errors:>3} | {row.wrong:>16}")
    total = (sum(row.tried for row in rows), sum(row.server_errors for row in rows), sum(row.wrong for row in rows))
    print(f"{'total':<{width}} | {total[0]:>12} | {total[1]:>3} | {total[2]:>16}")
    if args.verbose:
        for row in rows:
            for note in row.notes:
                print(f"  {row.category}: {note}")


if __name__ == "__main__":
    main()
