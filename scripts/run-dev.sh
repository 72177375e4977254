#!/usr/bin/env bash
# `make run`: migrate, load the built-in templates, start the workers and the web server on
# the embedded defaults. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
mkdir -p var/log

$PY manage.py migrate --noinput
$PY manage.py load_builtin_templates
# The built-in tiny model (random weights) is what the gpu worker loads when IMAGINEER_MODEL is unset.
if [ -z "${IMAGINEER_MODEL:-}" ]; then $PY manage.py build_tiny_model; fi

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

.venv/bin/celery -A imagineer worker -Q gpu -c 1 -n gpu@%h --loglevel INFO >var/log/worker-gpu.log 2>&1 &
pids+=($!)
.venv/bin/celery -A imagineer worker -Q labeling,default -c 2 -n cpu@%h --loglevel INFO >var/log/worker-cpu.log 2>&1 &
pids+=($!)
# The reconciler's clock: sends imagineer.tasks.reconcile to the default queue every few seconds.
.venv/bin/celery -A imagineer beat --schedule var/celerybeat-schedule --loglevel INFO >var/log/beat.log 2>&1 &
pids+=($!)

cat <<MSG

  Imagineer is starting on http://$HOST:$PORT/
  Admin: http://$HOST:$PORT/admin/
  Make an admin account (in another terminal):  .venv/bin/python manage.py createsuperuser
  Worker logs: var/log/worker-gpu.log, var/log/worker-cpu.log, var/log/beat.log

MSG
$PY manage.py runserver "$HOST:$PORT"
