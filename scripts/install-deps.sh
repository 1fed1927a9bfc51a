#!/usr/bin/env bash
# Installs the Debian packages listed in packages.txt that are not installed yet.
#
# Checks each package with dpkg-query first and only runs `apt-get update` and
# `apt-get install` when something is missing, so a warm machine pays nothing.
# Uses sudo when not root (and sudo exists). Non-interactive: safe in CI.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
list="$root/packages.txt"

# Package names: strip comments and whitespace, skip blank lines.
packages=()
while IFS= read -r line; do
    line=${line%%#*}
    for word in $line; do packages+=("$word"); done
done <"$list"

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ $status == *" ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
    echo "install-deps: all ${#packages[@]} packages of packages.txt are installed"
    exit 0
fi

echo "install-deps: installing ${missing[*]}"

sudo=()
if ((EUID != 0)); then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "install-deps: not root and no sudo; install these as root: ${missing[*]}" >&2
        exit 1
    fi
fi

# `env` carries DEBIAN_FRONTEND through sudo, which resets the environment.
apt_get=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get
    -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

# A mirror can hiccup: try the update + install pair a few times before giving up.
for attempt in 1 2 3; do
    if "${apt_get[@]}" update -q &&
        "${apt_get[@]}" install -y -q --no-install-recommends "${missing[@]}"; then
        echo "install-deps: done"
        exit 0
    fi
    echo "install-deps: apt-get failed (attempt $attempt of 3)" >&2
    sleep $((attempt * 5))
done
echo "install-deps: could not install ${missing[*]}" >&2
exit 1
