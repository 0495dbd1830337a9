#!/usr/bin/env bash
# Set up a fresh Debian machine (as root) for the appliance: Debian packages, PostgreSQL and Redis running
# (started without systemd where it is absent), a virtualenv in .venv with the package, the database.
#   bash scripts/setup.sh           what the appliance needs (Chromium and fonts for receipt previews too)
#   bash scripts/setup.sh --tests   and what the tests need (dev extras, systemd-analyze, poppler-utils)
set -euo pipefail
cd "$(dirname "$0")/.."
want_tests=0
[ "${1:-}" = "--tests" ] && want_tests=1
export DEBIAN_FRONTEND=noninteractive

need=()
# chromium renders email previews (driven by Playwright, never a downloaded browser); DejaVu has Hebrew.
for pkg in postgresql redis-server python3-venv python3-dev chromium fonts-dejavu-core; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "$want_tests" = 1 ]; then
  # poppler-utils: the previews benchmark's pdf2image peer
  for pkg in systemd poppler-utils; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
fi
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# PostgreSQL: start the newest cluster if it is not answering (no systemd needed).
if ! pg_isready -q 2>/dev/null; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_lsclusters -h | grep -q "^$version main" || pg_createcluster "$version" main >/dev/null
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 60); do pg_isready -q && break; sleep 0.5; done
fi
me=$(id -un)
if ! su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='$me'\"" | grep -q 1; then
  su postgres -c "createuser --createdb '$me'"
fi
su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='appliance'\"" | grep -q 1 \
  || su postgres -c "createdb -O '$me' appliance"

# Redis keeps an append-only file (fsync every second), so a job or webhook accepted with a 200 survives a
# restart of redis-server; an operating-system crash can lose the last second or so (README, "Faults").
# Debian's redis-server gets a drop-in included last in its config (last value wins); a Redis that is
# already running is switched over live; one we start ourselves gets the same flags.
if [ -f /etc/redis/redis.conf ]; then
  printf 'appendonly yes\nappendfsync everysec\n' > /etc/redis/appliance.conf
  chmod 0644 /etc/redis/appliance.conf
  grep -qx 'include /etc/redis/appliance.conf' /etc/redis/redis.conf \
    || echo 'include /etc/redis/appliance.conf' >> /etc/redis/redis.conf
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly yes \
    --appendfsync everysec --dir /var/lib/redis --logfile /var/log/redis/appliance.log
  for _ in $(seq 1 60); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
if [ "$(redis-cli -h 127.0.0.1 -p 6379 config get appendonly | tail -n 1)" != "yes" ]; then
  redis-cli -h 127.0.0.1 -p 6379 config set appendfsync everysec >/dev/null || true
  redis-cli -h 127.0.0.1 -p 6379 config set appendonly yes | grep -q OK \
    || echo "setup: WARNING: could not turn on Redis' append-only file; queued jobs do not survive a restart"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check --upgrade pip
if [ "$want_tests" = 1 ]; then
  .venv/bin/pip install -q --disable-pip-version-check -e ".[dev]"
else
  .venv/bin/pip install -q --disable-pip-version-check -e .
fi
mkdir -p /var/lib/appliance
echo "setup: done (PostgreSQL and Redis answering, .venv ready)"
