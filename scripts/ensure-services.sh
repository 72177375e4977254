#!/usr/bin/env bash
# Make sure the services the tests use answer: PostgreSQL and Redis on 127.0.0.1.
# Installs them from Debian's packages when missing (root), starts them when stopped.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

apt_install() {
  if [ "$(id -u)" != 0 ]; then echo "Need root to install $*; install it and run again." >&2; exit 1; fi
  if [ ! -f /var/lib/apt/periodic/imagineer-updated ]; then
    apt-get update -qq && mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/imagineer-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! port_open 5432; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do port_open 5432 && break; sleep 1; done
  port_open 5432 || { echo "PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 1; }
fi

if ! port_open 6379; then
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/imagineer.log
  for _ in $(seq 1 30); do port_open 6379 && break; sleep 1; done
  port_open 6379 || { echo "Redis did not start on 127.0.0.1:6379" >&2; exit 1; }
fi
# Pillow's wheel carries libraqm (Arabic shaping for finished cards) but loads the system's FriBiDi.
if [ -x .venv/bin/python ] && ! .venv/bin/python -c "from PIL import features; raise SystemExit(not features.check('raqm'))"; then
  apt_install libfribidi0
fi
echo "services: PostgreSQL and Redis answer on 127.0.0.1"
