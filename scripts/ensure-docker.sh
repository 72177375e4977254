#!/usr/bin/env bash
# Make sure a Docker engine for the labeling tests answers, and print the DOCKER_HOST to use.
#
# Installs Debian's docker.io (and busybox-static, the test image's rootfs) when missing,
# without letting the package start a daemon, then starts our own dockerd: its own socket,
# data root, exec root and pidfile under $IMAGINEER_DOCKER_ROOT, and no bridge, no NAT and no
# iptables rules at all (containers here only ever run with --network none). Idempotent: a
# second run finds the daemon answering and only prints the host.
set -euo pipefail

ROOT="${IMAGINEER_DOCKER_ROOT:-/var/lib/imagineer-docker}"
SOCKET="$ROOT/docker.sock"
HOST="unix://$SOCKET"

answers() { DOCKER_HOST="$HOST" timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if answers; then
  echo "DOCKER_HOST=$HOST"
  exit 0
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# busybox-static, not busybox: the test image is FROM scratch, so its busybox must be static.
if ! command -v dockerd >/dev/null || ! installed busybox-static; then
  if [ "$(id -u)" != 0 ]; then echo "Need root to install docker.io and busybox-static." >&2; exit 1; fi
  # The package's maintainer scripts would start the system daemon (with a bridge and NAT);
  # policy-rc.d answering 101 tells invoke-rc.d not to start anything.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  if [ ! -f /var/lib/apt/periodic/imagineer-updated ]; then
    apt-get update -qq && mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/imagineer-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends \
    docker.io busybox-static >/dev/null
fi

mkdir -p "$ROOT/data" "$ROOT/exec"
if [ -f "$ROOT/docker.pid" ] && kill -0 "$(cat "$ROOT/docker.pid")" 2>/dev/null; then
  echo "dockerd (pid $(cat "$ROOT/docker.pid")) is running but does not answer yet; waiting" >&2
else
  rm -f "$SOCKET" "$ROOT/docker.pid"
  # Its own session: stopping the caller (a test run, a shell) must not take the engine with it.
  setsid nohup dockerd \
    --host "$HOST" \
    --data-root "$ROOT/data" \
    --exec-root "$ROOT/exec" \
    --pidfile "$ROOT/docker.pid" \
    --bridge=none \
    --iptables=false \
    --ip6tables=false \
    --ip-forward=false \
    --ip-masq=false \
    --userland-proxy=false \
    >>"$ROOT/dockerd.log" 2>&1 </dev/null &
fi

for _ in $(seq 1 60); do
  if answers; then
    echo "DOCKER_HOST=$HOST"
    exit 0
  fi
  sleep 1
done
echo "dockerd did not answer on $HOST within 60s; last log lines:" >&2
tail -n 30 "$ROOT/dockerd.log" >&2 || true
exit 1
