#!/usr/bin/env bash
# Makes sure `promtool` (Prometheus' rule checker and unit-test runner) is on PATH, installing Debian's
# `prometheus` package (which ships it) when it is not. Idempotent: a no-op when promtool is already there.
# Called by tests/observability/ops-promtool.test.ts; safe to run by hand. Prints the promtool path on success.
# Exit 0: promtool is available. Exit 1: it is not, and stderr says what to install.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
  command -v promtool
  exit 0
fi

explain() {
  # Builtins only: this must print even on a machine that lacks the usual tools.
  printf '%s\n' \
    "ensure-promtool: promtool is not installed and could not be installed automatically ($1)." \
    "Install it, then run the tests again:" \
    "  Debian/Ubuntu:  sudo apt-get update && sudo apt-get install -y prometheus   (ships /usr/bin/promtool)" \
    "  elsewhere:      put the promtool binary of a Prometheus 2.x release on PATH" >&2
  exit 1
}

command -v apt-get >/dev/null 2>&1 || explain "no apt-get on this machine"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=(sudo -n); else explain "not root and no password-less sudo"; fi
fi

# One installer at a time (two test processes, or a person and a test); the second finds promtool installed.
LOCK="${TMPDIR:-/tmp}/simplebank-ensure-promtool.lock"
exec 9>"$LOCK"
if command -v flock >/dev/null 2>&1; then flock -w 600 9 || explain "timed out waiting for another installer"; fi
if command -v promtool >/dev/null 2>&1; then
  command -v promtool
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
echo "ensure-promtool: installing Debian's prometheus package (for promtool)…" >&2
# --no-install-recommends: promtool is all we need. Debian's policy-rc.d in containers keeps the daemon from starting.
if ! "${SUDO[@]}" apt-get install -y --no-install-recommends prometheus >&2; then
  "${SUDO[@]}" apt-get update >&2 || explain "apt-get update failed"
  "${SUDO[@]}" apt-get install -y --no-install-recommends prometheus >&2 || explain "apt-get install prometheus failed"
fi
command -v promtool >/dev/null 2>&1 || explain "the prometheus package installed no promtool"
command -v promtool
