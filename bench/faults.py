"""Fault injection, before and after: what a dropped database connection, a broker restart, a
broker down at submit time, a killed worker and a quick cancel/retry do to batch runs.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/imagineer REDIS_URL=redis://127.0.0.1:6379/N \
        .venv/bin/python bench/faults.py [--trials 3] [--before 294c814] [--faults db_drop,...] [--settle 30]

Each side runs in its own process on its own fresh database (``<DATABASE_URL name>_faults_before``
/ ``_after``), a temporary MEDIA_ROOT, a private redis-server broker (a spare port from
IMAGINEER_TEST_REDIS_PORTS, default 6390-6399), real gpu worker processes and the tiny model.
"before" is the code at ``--before`` (extracted with ``git archive``), "after" this checkout;
the scenarios are ``imagineer/faultlab.py`` of this checkout in both. Prints:

    fault | trials | lost | duplicated | stuck | orphan files | recovery time

lost: rows left with no image and no failure reason; duplicated: extra images, album entries or
runs; stuck: runs and jobs not finished ``--settle`` seconds after the fault cleared (then
recovery is "never"); orphan files: temporaries, images no row points at, sidecars without an
image, left once the run settled; recovery: seconds from the fault clearing to every run
finished (a killed worker's fault clears when its replacement has loaded the model).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def _database_url(suffix: str) -> str:
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        sys.exit("DATABASE_URL must point at PostgreSQL (the faults drop its connections).")
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}_faults_{suffix}"))


def _database_recreate(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def driver(args: argparse.Namespace) -> None:
    """Runs inside the tree under test (cwd and sys.path[0] are that tree)."""
    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagineer.settings")
    import django

    django.setup()
    import importlib.util

    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    spec = importlib.util.spec_from_file_location("faultlab", args.lab)
    assert spec and spec.loader
    faultlab = importlib.util.module_from_spec(spec)
    sys.modules["faultlab"] = faultlab  # dataclasses look their module up there
    spec.loader.exec_module(faultlab)
    results = []
    log_dir = Path(tempfile.mkdtemp(prefix="faults-logs-"))
    with faultlab.Lab(log_dir=log_dir, settle_timeout=args.settle) as lab:
        for fault in args.faults.split(","):
            for _ in range(args.trials):
                outcome = lab.scenario(fault)
                results.append(outcome.__dict__)
                print(json.dumps(outcome.__dict__), file=sys.stderr, flush=True)
    print("RESULTS " + json.dumps(results), flush=True)


def side(label: str, tree: Path, args: argparse.Namespace, tiny: Path) -> list[dict]:
    url = _database_url(label)
    _database_recreate(url)
    media = Path(tempfile.mkdtemp(prefix=f"faults-media-{label}-"))
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "MEDIA_ROOT": str(media),
        "LORA_ROOT": str(media / "loras"),
        "IMAGINEER_TINY_MODEL_DIR": str(tiny),
        "IMAGINEER_MODEL": "",
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable,
        str(ROOT / "bench" / "faults.py"),
        "--driver",
        "--lab",
        str(ROOT / "imagineer" / "faultlab.py"),
    ]
    command += ["--trials", str(args.trials), "--faults", args.faults, "--settle", str(args.settle)]
    print(f"--- {label}: {tree}", file=sys.stderr, flush=True)
    done = subprocess.run(command, cwd=tree, env=env, stdout=subprocess.PIPE, text=True)
    line = next((line for line in done.stdout.splitlines() if line.startswith("RESULTS ")), None)
    if done.returncode != 0 or line is None:
        sys.exit(f"The {label} side failed (exit {done.returncode}); its output is above.")
    return json.loads(line.removeprefix("RESULTS "))


def _tree_at(ref: str) -> Path:
    tree = Path(tempfile.mkdtemp(prefix=f"faults-before-{ref}-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def table(sides: dict[str, list[dict]], settle: float) -> str:
    lines = [
        "| code | fault | trials | lost | duplicated | stuck | orphan files | recovery time (median, max) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, results in sides.items():
        faults = list(dict.fromkeys(result["fault"] for result in results))
        for fault in faults:
            rows = [result for result in results if result["fault"] == fault]
            times = [row["recovery"] for row in rows if row["recovery"] is not None]
            slow = len(rows) - len(times)
            recovery = f"{statistics.median(times):.1f} s, {max(times):.1f} s" if times else ""
            if slow:
                recovery = (recovery + "; " if recovery else "") + f"{slow} of {len(rows)} never (> {settle:.0f} s)"
            lines.append(
                f"| {label} | {fault} | {len(rows)} | {sum(r['lost'] for r in rows)} | "
                f"{sum(r['duplicated'] for r in rows)} | {sum(r['stuck'] for r in rows)} | "
                f"{sum(r['orphans'] for r in rows)} | {recovery} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--before", default="294c814", help="git ref of the code before ('' to skip)")
    parser.add_argument("--faults", default="db_drop,broker_restart,broker_down_at_start,worker_kill,cancel_retry")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds a run may take to recover")
    parser.add_argument("--sides", default="before,after", help="which sides to run")
    parser.add_argument("--driver", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lab", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        driver(args)
        return

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagineer.settings")
    import django

    django.setup()
    from generation.engine.tiny import tiny_model_build

    tiny = tiny_model_build(Path(tempfile.gettempdir()) / "imagineer-faults-tiny-sd15")
    sides = {}
    if args.before and "before" in args.sides:
        tree = _tree_at(args.before)
        (tree / ".venv").symlink_to(ROOT / ".venv")
        sides[f"before ({args.before})"] = side("before", tree, args, tiny)
    if "after" in args.sides:
        sides["after"] = side("after", ROOT, args, tiny)
    print(table(sides, args.settle))


if __name__ == "__main__":
    main()
