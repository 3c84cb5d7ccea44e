#!/usr/bin/env bash
# Idempotent: makes sure Debian's Chromium is installed for the console's browser suite
# (npm run test:browser drives it with playwright-core; Playwright's own browser download is
# never used). Installs it with apt when /usr/bin/chromium is missing — needs root then, as CI on
# a fresh machine has — and prints its version. Safe to run any number of times.
set -euo pipefail

CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"

log() { printf '[setup-chromium] %s\n' "$*"; }

if [ -x "$CHROMIUM" ]; then
  log "Chromium already installed at $CHROMIUM"
else
  if [ "$CHROMIUM" != /usr/bin/chromium ]; then
    log "CHROMIUM_PATH=$CHROMIUM is not an executable, and only /usr/bin/chromium can be installed here"; exit 1
  fi
  log "installing Chromium with apt"
  # Another apt (an image's first boot, unattended upgrades) may hold the lock for a while.
  apt-get -o DPkg::Lock::Timeout=300 update
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y chromium
fi

# The version the suite runs against, for the log; fails the step if the binary cannot start.
"$CHROMIUM" --version
