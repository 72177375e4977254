"""The fault suite (``pytest -m faults``): PostgreSQL, Redis and workers broken on purpose.

Real PostgreSQL, a private redis-server as the broker (killed and restarted without
persistence), real gpu worker processes and a default worker with the reconciler's beat,
with fast timeouts for the lab only (imagineer/faultlab.py). Every scenario of issue 18 runs
three times on a small run of the tiny model and must end with: every run finished, every
row's image exactly once (or failed with a reason), no job left unfinished, no orphan file,
no duplicate, and recovery within 30 s of the fault clearing. ``bench/faults.py`` prints the
same scenarios as a before/after table.
"""

from __future__ import annotations

import pytest

from imagineer.faultlab import FAULTS, Lab

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.django_db(transaction=True)]
TRIALS = 3
RECOVERY_LIMIT = 30.0


@pytest.fixture
def lab(settings, tmp_path, tiny_model_dir, media_root):
    settings.IMAGINEER_MODEL = ""
    settings.IMAGINEER_TINY_MODEL_DIR = tiny_model_dir
    settings.IMAGINEER_TORCH_THREADS = 1
    with Lab(log_dir=tmp_path, settle_timeout=RECOVERY_LIMIT) as running:
        yield running


def test_every_fault_heals_without_loss_or_duplicates(lab):
    outcomes = [lab.scenario(fault) for fault in FAULTS for _ in range(TRIALS)]
    bad = [outcome for outcome in outcomes if not outcome.clean]
    report = "\n".join(
        f"{o.fault}: lost={o.lost} dup={o.duplicated} stuck={o.stuck} orphans={o.orphans} "
        f"recovery={o.recovery} {'; '.join(o.notes)}"
        for o in outcomes
    )
    assert not bad, f"Not healed:\n{report}\n\nworker logs: {[w.log_path for w in lab.workers]}"
    assert all(o.recovery is not None and o.recovery <= RECOVERY_LIMIT for o in outcomes)
    from imagineer.reconcile import idle_problems

    assert idle_problems() == []
