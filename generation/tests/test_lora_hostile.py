"""Hostile LoRA files and uploads (issue 12, items 2 and 3).

Crafted safetensors headers used to answer 500, and two of them (alpha "nan", "1e999") were
stored and then broke GET /api/loras for everyone. Concurrent uploads with one file name
lost files: the loser's ``os.replace`` overwrote the winner's file, then its clean-up
unlinked it. Here: every malformed file is a 400 naming what is wrong and stores nothing;
the header reader is property-tested; concurrent uploads keep every file their rows name.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.services import token_create
from generation.engine.lora_files import MAX_RANK, LoraFileError, LoraInfo, lora_inspect
from generation.models import Lora
from generation.services.loras import lora_path
from imagineer.tests.factories import LoraFactory, UserFactory

DOWN = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight"
UP = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight"
ALPHA = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.alpha"


def crafted(header: Any, data: bytes = b"") -> bytes:
    """A file with exactly this header (any JSON) and data buffer."""
    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return struct.pack("<Q", len(raw)) + raw + data


def valid_header(*, rank: int = 4, metadata: dict | None = None, alpha_tensor: bool = False) -> tuple[dict, bytes]:
    header: dict[str, Any] = {
        DOWN: {"dtype": "F32", "shape": [rank, 768], "data_offsets": [0, rank * 768 * 4]},
        UP: {"dtype": "F32", "shape": [320, rank], "data_offsets": [rank * 768 * 4, rank * 768 * 4 + 320 * rank * 4]},
    }
    size = rank * 768 * 4 + 320 * rank * 4
    data = bytes(size)
    if alpha_tensor:
        header[ALPHA] = {"dtype": "F32", "shape": [], "data_offsets": [size, size + 4]}
        data += struct.pack("<f", 8.0)
    if metadata is not None:
        header["__metadata__"] = metadata
    return header, data


def with_entry(**entries: Any) -> tuple[dict, bytes]:
    header, data = valid_header()
    header.update(entries)
    return header, data


def with_down(**fields: Any) -> tuple[dict, bytes]:
    header, data = valid_header()
    header[DOWN] = {**header[DOWN], **fields}
    return header, data


CASES = {
    "alpha nan": (valid_header(metadata={"ss_network_alpha": "nan"}), "ss_network_alpha is 'nan'"),
    "alpha 1e999": (valid_header(metadata={"ss_network_alpha": "1e999"}), "ss_network_alpha is '1e999'"),
    "alpha negative": (valid_header(metadata={"ss_network_alpha": "-4"}), "0 or more"),
    "alpha word": (valid_header(metadata={"ss_network_alpha": "abc"}), "'abc', not a number"),
    "alpha list": (valid_header(metadata={"ss_network_alpha": [1]}), "__metadata__ must be an object"),
    "adapter alpha inf": (
        valid_header(metadata={"lora_adapter_metadata": '{"lora_alpha": 1e999}'}),
        "lora_adapter_metadata's lora_alpha",
    ),
    "adapter not json": (valid_header(metadata={"lora_adapter_metadata": "{"}), "not valid JSON"),
    "metadata string": (valid_header(metadata="x"), "__metadata__ must be an object"),  # type: ignore[arg-type]
    "metadata number": (valid_header(metadata=5), "__metadata__ must be an object"),  # type: ignore[arg-type]
    "shape 10**12": (with_down(shape=[10**12, 768]), "dimensions are 0 to"),
    "shape too big for its data": (
        with_down(shape=[400, 768]),
        "needs 1,228,800 bytes, but its data_offsets hold 12,288",
    ),
    "shape 2**40 squared": (with_down(shape=[2**40, 2**40]), "dimensions are 0 to"),
    "shape string": (with_down(shape="abc"), "a shape is a list of whole numbers"),
    "shape with a string": (with_down(shape=[4, "x"]), "a shape is a list of whole numbers"),
    "shape negative": (with_down(shape=[-4, 768]), "dimensions are 0 to"),
    "shape zero rank": (with_down(shape=[0, 768], data_offsets=[0, 0]), "gives rank 0"),
    "shape huge rank": (with_down(shape=[5000, 0], data_offsets=[0, 0]), "gives rank 5000"),
    "shape scalar": (with_down(shape=[], data_offsets=[0, 4]), "not a matrix"),
    "entry is a number": (with_entry(**{"lora_unet_x.lora_down.weight": 5}), "not an object"),
    "entry without shape": (with_entry(**{"x.lora_down.weight": {"dtype": "F32", "data_offsets": [0, 0]}}), "no shape"),
    "unknown dtype": (with_down(dtype="F128"), "unknown dtype 'F128'"),
    "offsets past the end": (with_down(data_offsets=[0, 10**9]), "outside the file's"),
    "offsets reversed": (with_down(data_offsets=[100, 0]), "outside the file's"),
    "offsets missing": (with_down(data_offsets=None), "no valid data_offsets"),
    "alpha tensor bogus offsets": (
        with_entry(**{ALPHA: {"dtype": "F32", "shape": [], "data_offsets": [2**62, 2**62 + 4]}}),
        "outside the file's",
    ),
    "alpha tensor not a number": (
        with_entry(**{ALPHA: {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}),
        "is not one number",
    ),
    "header a list": (([1, 2], b""), "not a JSON object"),
    "no tensors": (({}, b""), "holds no tensors"),
    "not a lora": (({"model.weight": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, bytes(4)), "not a LoRA"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_a_crafted_header_is_a_400_naming_what_is_wrong_and_stores_nothing(api_as, media_root, case):
    (header, data), words = CASES[case]
    upload = SimpleUploadedFile("crafted.safetensors", crafted(header, data))
    response = api_as("creator").post("/api/loras", {"file": upload}, format="multipart")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert words in error["fields"]["file"][0], error
    assert not Lora.objects.exists()
    assert [path.name for path in (media_root / "loras").rglob("*") if path.is_file()] == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"\x00" * 4, "too short"),
        (struct.pack("<Q", 2**40) + b"{}", "no valid safetensors header"),
        (struct.pack("<Q", 1) + b"{", "no valid safetensors header"),
        (crafted(b"{not json}"), "not a readable safetensors file"),
        (crafted(b"\xff\xfe{}"), "not a readable safetensors file"),
        (crafted(b"[" * 100_000 + b"]" * 100_000), "not a readable safetensors file"),
    ],
)
def test_unreadable_headers_are_400s(api_as, raw, words):
    response = api_as("creator").post(
        "/api/loras", {"file": SimpleUploadedFile("x.safetensors", raw)}, format="multipart"
    )
    assert response.status_code == 400
    assert words in response.json()["error"]["fields"]["file"][0]


@pytest.mark.django_db
def test_good_alphas_are_read_from_metadata_and_alpha_tensors(tmp_path):
    for metadata, expected in (({"ss_network_alpha": "8.0"}, 8.0), ({"ss_network_alpha": "None"}, None)):
        header, data = valid_header(metadata=metadata)
        (tmp_path / "a.safetensors").write_bytes(crafted(header, data))
        assert lora_inspect(tmp_path / "a.safetensors").alpha == expected
    header, data = valid_header(alpha_tensor=True)
    (tmp_path / "b.safetensors").write_bytes(crafted(header, data))
    info = lora_inspect(tmp_path / "b.safetensors")
    assert (info.base, info.rank, info.alpha) == ("sd15", 4, 8.0)


@pytest.mark.django_db
def test_a_300_character_file_name_gets_a_200_character_name(api_as):
    header, data = valid_header()
    name = "x" * 300 + ".safetensors"
    response = api_as("creator").post(
        "/api/loras", {"file": SimpleUploadedFile(name, crafted(header, data))}, format="multipart"
    )
    assert response.status_code == 201, response.content
    lora = Lora.objects.get()
    assert lora.name == "x" * 200 and lora_path(lora).is_file()


@pytest.mark.django_db
def test_one_bad_row_never_breaks_the_lora_list(api_as):
    """Rows stored before files were checked (alpha NaN or infinite) are shown with alpha null."""
    client = api_as("viewer")
    LoraFactory(name="fine", alpha=8.0)
    bad = [LoraFactory(name="nan", alpha=math.nan), LoraFactory(name="inf", alpha=math.inf)]
    listed = client.get("/api/loras")
    assert listed.status_code == 200
    assert {row["name"]: row["alpha"] for row in listed.json()["results"]} == {"fine": 8.0, "nan": None, "inf": None}
    for lora in bad:
        detail = client.get(f"/api/loras/{lora.pk}")
        assert detail.status_code == 200 and detail.json()["alpha"] is None


# --- properties of the header reader ----------------------------------------------------


def assert_usable(info: LoraInfo) -> None:
    """What the library stores and serves from a result: it must fit the columns and JSON."""
    assert info.base in {"sd15", "sd2", "sdxl", "unknown"}
    assert info.rank is not None and 1 <= info.rank <= MAX_RANK
    assert info.alpha is None or (math.isfinite(info.alpha) and info.alpha >= 0)
    assert info.cross_attention_dim is None or 0 <= info.cross_attention_dim < 2**31
    json.dumps(info.__dict__, allow_nan=False)


def inspect_bytes(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.safetensors"
        path.write_bytes(raw)
        try:
            info = lora_inspect(path)
        except LoraFileError as error:
            assert str(error)
            return
        assert_usable(info)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
dims = st.integers(-5, 2**41) | st.sampled_from([0, 1, 4, 768, 1024, 2048]) | json_values
tensor_entries = st.fixed_dictionaries(
    {},
    optional={
        "dtype": st.sampled_from(["F32", "F16", "BF16", "I8", "F64", "F128", "bogus"]) | json_values,
        "shape": st.lists(dims, max_size=4) | json_values,
        "data_offsets": st.lists(st.integers(-10, 2**64) | json_values, max_size=3) | json_values,
    },
)
tensor_names = st.sampled_from([DOWN, UP, ALPHA, "lora_te2_x.lora_down.weight", "x.lora_A.weight"]) | st.text(
    max_size=30
)
headers = (
    st.dictionaries(
        tensor_names | st.just("__metadata__"),
        tensor_entries
        | json_values
        | st.dictionaries(
            st.sampled_from(["ss_network_alpha", "lora_adapter_metadata"]), st.text(max_size=12) | json_values
        ),
        max_size=5,
    )
    | json_values
)


@st.composite
def well_formed(draw: Any) -> tuple[dict, bytes]:
    """Headers that follow the format (offsets match shapes) with random names, shapes and
    alpha metadata: these reach the rank, base and alpha logic rather than the format checks."""
    header: dict[str, Any] = {}
    offset = 0
    for name in draw(st.lists(tensor_names, min_size=1, max_size=4, unique=True)):
        if name == "__metadata__":
            continue
        shape = draw(
            st.lists(st.integers(0, 5000), max_size=3)
            | st.tuples(st.integers(0, 12), st.sampled_from([8, 768, 1024, 2048])).map(list)
        )
        dtype = draw(st.sampled_from(["F32", "F16", "BF16", "I8", "F64"]))
        size = math.prod(shape) * {"F32": 4, "F16": 2, "BF16": 2, "I8": 1, "F64": 8}[dtype]
        if size > 300_000:
            shape, size = [1], {"F32": 4, "F16": 2, "BF16": 2, "I8": 1, "F64": 8}[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    alpha = draw(st.none() | st.text(max_size=8) | st.floats().map(str) | st.integers().map(str))
    if alpha is not None:
        header["__metadata__"] = {"ss_network_alpha": alpha}
    return header, draw(st.binary(min_size=offset, max_size=offset))


fast = settings(
    max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@fast
@given(header=headers, data=st.binary(max_size=64))
def test_any_header_json_gives_a_lora_file_error_or_a_usable_result(header, data):
    inspect_bytes(crafted(header, data))


@fast
@given(file=well_formed())
def test_any_well_formed_header_gives_a_lora_file_error_or_a_usable_result(file):
    inspect_bytes(crafted(*file))


VALID, _ = valid_header(rank=2, metadata={"ss_network_alpha": "2"}, alpha_tensor=True)
VALID_BYTES = crafted(*valid_header(rank=2, alpha_tensor=True))


@fast
@given(
    edits=st.lists(st.tuples(st.integers(0, len(VALID_BYTES) - 1), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.none() | st.integers(0, len(VALID_BYTES)),
)
def test_byte_mutations_of_a_valid_file_give_a_lora_file_error_or_a_usable_result(edits, cut):
    raw = bytearray(VALID_BYTES)
    for position, value in edits:
        raw[position] = value
    inspect_bytes(bytes(raw[:cut] if cut is not None else raw))


# --- concurrent uploads ------------------------------------------------------------------

THREADS, ROUNDS = 6, 4


@pytest.mark.django_db(transaction=True)
def test_concurrent_same_name_uploads_keep_every_file_their_rows_name(live_server, media_root):
    """N threads x M rounds upload one file name with different content over HTTP at the same
    moment: every 201 row's file exists with its sha256; every refusal leaves nothing behind."""
    import requests

    _, key = token_create(user=UserFactory(role="creator"), name="uploads")
    answers: list[tuple[int, dict, str]] = []
    lock = threading.Lock()

    def upload(round_: int, thread: int, barrier: threading.Barrier) -> None:
        header, data = valid_header(rank=1 + (round_ * THREADS + thread) % 8)
        content = crafted(header, data) + f"{round_}-{thread}".encode()  # trailing bytes: distinct content
        form = {"name": f"style {round_}-{thread}"} if thread % 2 else {}  # half take the file's name
        barrier.wait(timeout=30)
        response = requests.post(
            f"{live_server.url}/api/loras",
            headers={"Authorization": f"Token {key}"},
            files={"file": ("style.safetensors", content)},
            data=form,
            timeout=60,
        )
        with lock:
            answers.append((response.status_code, response.json(), hashlib.sha256(content).hexdigest()))

    for round_ in range(ROUNDS):
        barrier = threading.Barrier(THREADS)
        threads = [threading.Thread(target=upload, args=(round_, n, barrier)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

    assert len(answers) == THREADS * ROUNDS
    assert {status for status, _, _ in answers} <= {201, 400}, answers
    created = [(body, sha) for status, body, sha in answers if status == 201]
    assert len(created) >= ROUNDS * THREADS // 2  # every named upload succeeds
    for body, sha in created:
        lora = Lora.objects.get(pk=body["id"])
        path = lora_path(lora)
        assert path.is_file(), lora.file
        assert lora.sha256 == sha == hashlib.sha256(path.read_bytes()).hexdigest()
    for status, body, _ in answers:
        if status == 400:
            assert "already exists" in body["error"]["message"] or "at the same time" in body["error"]["message"]
    files = sorted(path.name for path in (media_root / "loras").rglob("*") if path.is_file())
    assert len(files) == Lora.objects.count() == len(created)  # no orphan, no temporary file left
    connection.close()
