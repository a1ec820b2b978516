#!/usr/bin/env bash
# Installs Debian's chromium for the report tests (npm run setup:browser, or SPIKEPROBE_INSTALL_BROWSER=1 npm test).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
  echo "setup-browser: needs root to apt-get install chromium (run: sudo apt-get install -y chromium)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
