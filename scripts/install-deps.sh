#!/usr/bin/env bash
# Installs the Debian packages listed in packages.txt that are not installed yet.
#
#   scripts/install-deps.sh [--list] [GROUP...]
#
# packages.txt is grouped by `[name]` header lines. With no GROUP every package of every group
# is installed (what scripts/serve.sh, scripts/test.sh and CI run); with GROUPs only theirs, e.g.
# `scripts/install-deps.sh build` in the Dockerfile's build stage. --list prints the selected
# package names, one per line, and installs nothing.
#
# An entry `a|b` of packages.txt is satisfied by either package; --list prints the installed one,
# else the first. Checks each package with dpkg-query first and only runs `apt-get update` and
# `apt-get install` when something is missing, so a warm machine pays nothing.
# Uses sudo when not root (and sudo exists). Non-interactive: safe in CI.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
list="$root/packages.txt"

usage() {
    echo "usage: $0 [--list] [GROUP...]   (groups of packages.txt: ${groups[*]})" >&2
    exit 2
}

# Reads packages.txt: comments and whitespace stripped, blank lines skipped, `[name]` starts a group.
groups=()                # group names, in file order
declare -A group_of=()   # package -> its group
packages_all=()          # every package, in file order
group=
lineno=0
while IFS= read -r line || [[ -n $line ]]; do
    lineno=$((lineno + 1))
    line=${line%%#*}
    if [[ $line =~ ^[[:space:]]*\[([A-Za-z0-9_-]+)\][[:space:]]*$ ]]; then
        group=${BASH_REMATCH[1]}
        groups+=("$group")
        continue
    fi
    for word in $line; do
        if [[ -z $group ]]; then
            echo "install-deps: packages.txt line $lineno: '$word' comes before the first [group] line" >&2
            exit 1
        fi
        packages_all+=("$word")
        group_of[$word]=$group
    done
done <"$list"

list_only=false
wanted=()
for arg in "$@"; do
    case $arg in
    --list) list_only=true ;;
    -h | --help) usage ;;
    -*) echo "install-deps: unknown option $arg" >&2 && usage ;;
    *)
        known=false
        for g in "${groups[@]}"; do [[ $g == "$arg" ]] && known=true; done
        if ! $known; then
            echo "install-deps: packages.txt has no group [$arg]" >&2
            usage
        fi
        wanted+=("$arg")
        ;;
    esac
done

# The selection: every package, or those of the named groups.
packages=()
if ((${#wanted[@]} == 0)); then
    packages=("${packages_all[@]}")
    selection="packages.txt"
else
    for pkg in "${packages_all[@]}"; do
        for g in "${wanted[@]}"; do
            if [[ ${group_of[$pkg]} == "$g" ]]; then
                packages+=("$pkg")
                break
            fi
        done
    done
    selection="packages.txt [${wanted[*]}]"
fi

installed() {
    local status
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)
    [[ $status == *" ok installed" ]]
}

# An entry `a|b` is satisfied by any one of its packages (e.g. docker.io or Docker's docker-ce);
# it resolves to the installed one, else to the first (the one to install).
resolved=()
missing=()
for entry in "${packages[@]}"; do
    IFS='|' read -r -a alternatives <<<"$entry"
    choice=
    for pkg in "${alternatives[@]}"; do
        if installed "$pkg"; then
            choice=$pkg
            break
        fi
    done
    if [[ -n $choice ]]; then
        resolved+=("$choice")
    else
        resolved+=("${alternatives[0]}")
        missing+=("${alternatives[0]}")
    fi
done

if $list_only; then
    ((${#resolved[@]} == 0)) || printf '%s\n' "${resolved[@]}"
    exit 0
fi

if ((${#missing[@]} == 0)); then
    echo "install-deps: all ${#packages[@]} packages of $selection are installed"
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
