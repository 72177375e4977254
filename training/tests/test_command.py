"""``train_lora`` in-process with a progress bar (the worker path is in test_training_worker)."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from generation.models import Lora
from imagineer.tests.factories import UserFactory
from training.models import TrainingRun
from training.tests.conftest import album_make

pytestmark = pytest.mark.django_db


def test_train_lora_command_trains_and_registers():
    album = album_make(2)
    UserFactory(username="trainer", role="creator")
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "train_lora",
        album.slug,
        "--name",
        "Cli LoRA",
        "--trigger",
        "clz",
        "--user",
        "trainer",
        "--steps",
        "4",
        "--save-every",
        "4",
        "--resolution",
        "64",
        "--seed",
        "5",
        stdout=out,
        stderr=err,
    )
    run = TrainingRun.objects.get(name="Cli LoRA")
    assert run.status == TrainingRun.Status.COMPLETED and run.current_step == 4
    assert "Done: LoRA 'Cli LoRA'" in out.getvalue() and "4/4" in err.getvalue()  # tqdm writes to stderr
    assert Lora.objects.get(name="Cli LoRA").source == "training"


def test_train_lora_command_reports_bad_input():
    album = album_make(2)
    UserFactory(username="trainer", role="creator")
    with pytest.raises(CommandError, match="rank: Rank must be between 1 and 128"):
        call_command("train_lora", str(album.pk), "--name", "Bad", "--user", "trainer", "--rank", "0")
    with pytest.raises(CommandError, match="No album"):
        call_command("train_lora", "no-such-album", "--name", "Bad", "--user", "trainer")
