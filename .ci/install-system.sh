#!/usr/bin/env bash
# Installs the Debian packages brandmon's tests need, and nothing else (`make test` runs it).
#   openjdk-17-jre-headless: `java`, which runs the local Kafka broker of the integration tests.
#   maven:          `mvn`, which fetches Kafka's jars from Maven Central (once, into a cache).
#   prometheus:     brings `promtool` (rules/config checks and rule unit tests) and the
#                   `prometheus` server binary the live scrape test starts on a free port.
#   docker-compose: Compose 1.29 (Python); no engine needed, it validates docker-compose.yml
#                   against the Compose schema where the `docker compose` plugin is missing.
#   tmux:           a real terminal for the live `brandmon top` test (first frame, refresh,
#                   Ctrl-C).
# Idempotent: a package whose command is already on PATH (from this package or another, say
# a JDK installed by hand) is skipped without touching apt's lists, so a second run (or a
# developer machine that has them) costs nothing. Quiet on success, loud on failure: `set -e`
# stops at the first error and apt's own message is printed.
set -euo pipefail

# Debian package -> a command it must provide once installed (checked after the install).
declare -A PACKAGES=(
    [openjdk-17-jre-headless]=java
    [maven]=mvn
    [prometheus]=promtool
    [docker-compose]=docker-compose
    [tmux]=tmux
)

missing=()
for pkg in "${!PACKAGES[@]}"; do
    command -v "${PACKAGES[$pkg]}" >/dev/null && continue
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]})); then
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "install-system: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
        SUDO="sudo"
    fi
    # noninteractive: CI has no stdin; the prometheus package's postinst would otherwise ask.
    export DEBIAN_FRONTEND=noninteractive
    echo "install-system: installing ${missing[*]} with apt-get" >&2
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    if ! { $SUDO apt-get update -qq && \
           $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "install-system: apt-get failed installing: ${missing[*]}" >&2
        exit 1
    fi
    # The Debian package enables a system prometheus service; where an init system runs
    # it would hold port 9090 and scrape nothing of ours. Tests start their own server.
    if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
        $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
fi

for pkg in "${!PACKAGES[@]}"; do
    cmd=${PACKAGES[$pkg]}
    command -v "$cmd" >/dev/null || { echo "install-system: $pkg installed but '$cmd' is not on PATH" >&2; exit 1; }
done
