#!/usr/bin/env bash
# Installs the Debian packages augbench needs (idempotent): the real Fashion-MNIST data set,
# and with --tests also PostgreSQL and headless Chromium for the test suite.
set -euo pipefail
packages=(dataset-fashion-mnist)
if [[ "${1:-}" == "--tests" ]]; then
  packages+=(postgresql chromium)
fi
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]] && ! command -v sudo >/dev/null; then
  echo "augbench needs these Debian packages: ${missing[*]} (run: apt-get install -y ${missing[*]})" >&2
  exit 1
fi
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
echo "installing Debian packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
