"""The commands the README lists: --help explains every argument; failures exit non-zero."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class

ROOT = Path(__file__).resolve().parents[2]
README_COMMANDS = sorted(set(re.findall(r"manage\.py ([a-z_]+)", (ROOT / "README.md").read_text())))


def test_the_readme_lists_the_commands():
    assert {"generate", "generate_batch", "register_loras", "export_dataset", "train_lora", "label_album"} <= set(
        README_COMMANDS
    )


@pytest.mark.parametrize("name", README_COMMANDS)
def test_every_readme_command_explains_its_arguments(name):
    command = load_command_class(get_commands()[name], name)
    parser = command.create_parser("manage.py", name)
    assert command.help.strip(), f"{name} has no description"
    unexplained = [action.dest for action in parser._actions if not (action.help or "").strip()]
    assert unexplained == [], f"{name}: arguments without help: {unexplained}"


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_register_loras_exits_non_zero_listing_broken_files(transactional_db, settings, tmp_path):
    import torch
    from safetensors.torch import save_file

    from generation.models import Lora

    root = Path(settings.LORA_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    save_file(
        {
            "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": torch.zeros(
                4, 768
            ),
            "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": torch.zeros(320, 4),
        },
        str(root / "good.safetensors"),
    )
    (root / "garbage.safetensors").write_bytes(b"this is not a safetensors file at all")
    (root / "old.ckpt").write_bytes(b"\x80\x04")
    database = settings.DATABASES["default"]
    env = {
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "LORA_ROOT": str(root),
    }

    helped = _manage("register_loras", "--help", env=env)
    assert helped.returncode == 0 and "--skip-broken" in helped.stdout and "Folder inside LORA_ROOT" in helped.stdout

    failed = _manage("register_loras", env=env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "garbage.safetensors" in failed.stderr and "old.ckpt" in failed.stderr
    assert "2 could not be registered" in failed.stderr and "--skip-broken" in failed.stderr
    # The good file is registered all the same.
    assert list(Lora.objects.values_list("name", flat=True)) == ["good"]

    accepted = _manage("register_loras", "--skip-broken", env=env)
    assert accepted.returncode == 0, accepted.stderr
    assert "0 LoRA(s) registered" in accepted.stdout and "garbage.safetensors" in accepted.stderr
