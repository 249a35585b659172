#!/usr/bin/env bash
# Install fer-edge on a camera box (Debian/Raspberry Pi OS/Ubuntu) as a systemd service.
# Usage: sudo deploy/install.sh [path-or-requirement]   (default: this checkout)
set -euo pipefail
source_spec=${1:-"$(cd "$(dirname "$0")/.." && pwd)"}
prefix=/opt/fer-edge

if [ "$(id -u)" -ne 0 ]; then echo "install.sh: run as root (sudo)" >&2; exit 77; fi
command -v python3 >/dev/null || { echo "install.sh: python3 is required" >&2; exit 69; }

python3 -m venv "$prefix"
"$prefix/bin/pip" install --quiet --upgrade pip
"$prefix/bin/pip" install --quiet "${source_spec}[device]"

install -d -m 0755 /etc/fer-edge
install -d -m 0700 /etc/fer-edge/credentials
if [ ! -f /etc/fer-edge/config.yaml ]; then
  install -m 0644 "$(dirname "$0")/config.example.yaml" /etc/fer-edge/config.yaml
  echo "install.sh: wrote /etc/fer-edge/config.yaml - edit cameras and broker, then:"
fi
for secret in FER_MQTT_PASSWORD CAM_PASSWORD; do
  [ -f "/etc/fer-edge/credentials/$secret" ] || install -m 0600 /dev/null "/etc/fer-edge/credentials/$secret"
done
install -m 0644 "$(dirname "$0")/../systemd/fer-edge.service" /etc/systemd/system/fer-edge.service
systemctl daemon-reload
"$prefix/bin/fer-edge" run --config /etc/fer-edge/config.yaml --check || {
  echo "install.sh: fix /etc/fer-edge/config.yaml, then: systemctl enable --now fer-edge" >&2; exit 78; }
systemctl enable --now fer-edge
echo "install.sh: fer-edge is running: journalctl -u fer-edge -f"
