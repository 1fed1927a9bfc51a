#!/usr/bin/env bash
# Builds the Docker image from the Dockerfile and checks it for real, with a Docker engine of its own.
#
#   scripts/container-test.sh          (run by scripts/test.sh, so by CI's .ci/run)
#
# 1. installs what it needs from Debian (packages.txt [container] [services] [test]);
# 2. starts a PRIVATE containerd and dockerd (no bridge, no iptables, no IP forwarding) whose data,
#    state and sockets live in a temporary folder, and stops both by PID at the end: no other Docker
#    daemon of the machine is used or touched (DOCKER_HOST points the client at this one);
# 3. makes the base images the Dockerfile starts FROM (debian:12, debian:12-slim) when they are
#    missing, with debootstrap from the machine's own Debian mirror (no image registry is needed);
#    the root file systems are cached in ~/.cache/bidding-server/base-images, keyed by the mirror's
#    Release file, the architecture and this recipe, and made again after 30 days;
# 4. builds the image (BuildKit, `--network host`) and prints its size and build time;
# 5. runs tests/container (pytest) against a Postgres and a Redis it starts on 127.0.0.1 on free
#    ports: migrate --wait --seed, serve as uid 10001, /readyz, a bid through a WebSocket, two
#    containers as two pods, the HEALTHCHECK and the compose healthcheck, `docker stop` draining,
#    no compiler or headers in the image;
# 6. rebuilds after a one-line source change (in a copy of the checkout) and checks that the
#    dependency layers come from the cache; prints the warm rebuild time.
# Every container runs with `--network host`: only loopback traffic is needed.
#
# Where Docker cannot run (not root and no sudo, the daemon does not start), it prints one line
# saying so and exits 1 when CI=true, 0 otherwise. Logs go to test-artifacts/container/.
#
# Environment: CONTAINER_TEST_IMAGE (tag to build, default bidding-server:container-test),
# CONTAINER_TEST_KEEP=1 keeps the temporary folder (the daemon is stopped all the same),
# CONTAINER_TEST_WARM=0 skips the warm rebuild, extra arguments go to pytest.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

log() { echo "container-test: $*"; }
started=$SECONDS

# One line, then exit: non-zero in CI (the checks must run there), zero on a laptop without Docker.
cannot_run() {
    echo "container-test: Docker cannot run here ($*): the image checks did not run"
    if [[ ${CI:-} == true ]]; then exit 1; fi
    exit 0
}

# dockerd needs root. Re-run through passwordless sudo when there is one.
if ((EUID != 0)); then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        exec sudo -n --preserve-env=CI,CONTAINER_TEST_IMAGE,CONTAINER_TEST_KEEP,CONTAINER_TEST_WARM "$0" "$@"
    fi
    cannot_run "starting a Docker daemon needs root, and there is no passwordless sudo"
fi

image=${CONTAINER_TEST_IMAGE:-bidding-server:container-test}
artifacts="$root/test-artifacts/container"
rm -rf "$artifacts"
mkdir -p "$artifacts"

# ---------------------------------------------------------------------------- packages
"$root/scripts/install-deps.sh" container services test ||
    cannot_run "could not install packages.txt [container] (docker.io, debootstrap)"
export PATH="$PATH:/usr/sbin:/sbin"
for tool in dockerd containerd debootstrap; do
    command -v "$tool" >/dev/null 2>&1 || cannot_run "$tool is not installed"
done
# The client of the same installation as the daemon (another `docker` may come first on PATH).
docker_cli=$(dirname "$(dirname "$(command -v dockerd)")")/bin/docker
[[ -x $docker_cli ]] || docker_cli=$(command -v docker || true)
[[ -x $docker_cli ]] || cannot_run "no docker client next to $(command -v dockerd)"

# ---------------------------------------------------------------------------- private daemon
tmp=$(mktemp -d /tmp/bidding-docker.XXXXXX)
chmod 711 "$tmp"
containerd_pid=
dockerd_pid=

# Stops what this script started, by PID, then anything left that runs from its folder (the
# containerd shims of containers still running), unmounts what is mounted under it, removes it.
cleanup() {
    local code=$?
    set +e
    if [[ -n $dockerd_pid ]] && kill -0 "$dockerd_pid" 2>/dev/null; then
        DOCKER_HOST="unix://$tmp/docker.sock" timeout 30 "$docker_cli" ps -aq 2>/dev/null |
            xargs -r env DOCKER_HOST="unix://$tmp/docker.sock" timeout 60 "$docker_cli" rm -f >/dev/null 2>&1
        stop_pid "$dockerd_pid" dockerd
    fi
    [[ -n $containerd_pid ]] && stop_pid "$containerd_pid" containerd
    local pid
    for pid in $(leftover_pids); do
        log "killing leftover process $pid ($({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | cut -c1-80))"
        kill -KILL "$pid" 2>/dev/null
    done
    local mount
    for mount in $(awk -v dir="$tmp/" 'index($2, dir) == 1 { print $2 }' /proc/self/mounts | sort -r); do
        umount -l "$mount" 2>/dev/null
    done
    if [[ ${CONTAINER_TEST_KEEP:-0} == 1 ]]; then
        log "kept $tmp"
    else
        rm -rf "$tmp"
    fi
    exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# SIGTERM, up to 30 s, then SIGKILL: only the given PID.
stop_pid() {
    local pid=$1 what=$2 deadline=$((SECONDS + 30))
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "$what (pid $pid) did not stop within 30 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null
            break
        fi
        sleep 0.2
    done
    wait "$pid" 2>/dev/null || true
}

# PIDs of processes whose command line names this script's temporary folder.
leftover_pids() {
    local dir
    for dir in /proc/[0-9]*; do
        [[ ${dir#/proc/} == "$$" ]] && continue
        if { tr '\0' ' ' <"$dir/cmdline"; } 2>/dev/null | grep -qF -- "$tmp/"; then
            echo "${dir#/proc/}"
        fi
    done
}

# Polls a command until it succeeds or `seconds` pass; fails early when process `pid` is gone.
wait_for() {
    local seconds=$1 pid=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || return 1
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# containerd of our own: dockerd would otherwise share a system containerd when one runs.
mkdir -p "$tmp/containerd"
cat >"$tmp/containerd/config.toml" <<TOML
version = 2
root = "$tmp/containerd/root"
state = "$tmp/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$tmp/containerd/containerd.sock"
[ttrpc]
  address = ""
[debug]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$tmp/containerd/opt"
TOML
containerd --config "$tmp/containerd/config.toml" >"$artifacts/containerd.log" 2>&1 &
containerd_pid=$!
wait_for 30 "$containerd_pid" test -S "$tmp/containerd/containerd.sock" ||
    cannot_run "containerd did not start: $(tail -n 1 "$artifacts/containerd.log")"

dockerd --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --userland-proxy=false --containerd "$tmp/containerd/containerd.sock" \
    --data-root "$tmp/data" --exec-root "$tmp/exec" --pidfile "$tmp/dockerd.pid" \
    -H "unix://$tmp/docker.sock" >"$artifacts/dockerd.log" 2>&1 &
dockerd_pid=$!
export DOCKER_HOST="unix://$tmp/docker.sock"
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH
wait_for 60 "$dockerd_pid" "$docker_cli" version ||
    cannot_run "dockerd did not start: $(grep -m1 -iE 'level=(fatal|error)' "$artifacts/dockerd.log" || tail -n 1 "$artifacts/dockerd.log")"
log "private dockerd $("$docker_cli" version -f '{{.Server.Version}}') (pid $dockerd_pid) on $DOCKER_HOST"
docker() { "$docker_cli" "$@"; }

# ---------------------------------------------------------------------------- base images
# The Debian mirrors apt uses here (the first bookworm/main and bookworm-security/main sources).
apt_mirror() {
    apt-cache policy 2>/dev/null | awk -v suite="$1/main" '$3 == suite && $2 ~ /^https?:/ { print $2; exit }'
}

# Version of the recipe below: change it when the base images must be made again.
base_recipe=1

make_base_images() {
    local mirror security arch release key cache full slim
    mirror=$(apt_mirror bookworm)
    security=$(apt_mirror bookworm-security)
    if [[ -z $mirror ]]; then
        apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null || true
        mirror=$(apt_mirror bookworm)
        security=$(apt_mirror bookworm-security)
    fi
    mirror=${mirror:-http://deb.debian.org/debian}
    mirror=${mirror%/}
    security=${security:-${mirror%/debian}/debian-security}
    security=${security%/}
    arch=$(dpkg --print-architecture)
    # The mirror's current Release file: a new point release (or another mirror) makes new images.
    release=$(/usr/bin/python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=30).read().decode("utf-8", "replace"))' \
        "$mirror/dists/bookworm/InRelease" 2>/dev/null | sed -n 's/^Date: //p' | head -n 1)
    key=$(printf '%s\n' "$base_recipe" "$mirror" "$security" "$arch" "$release" "$(debootstrap --version 2>/dev/null)" |
        sha256sum | cut -c1-16)
    cache="${XDG_CACHE_HOME:-$HOME/.cache}/bidding-server/base-images"
    full="$cache/debian-12-$arch-$key.tar"
    slim="$cache/debian-12-slim-$arch-$key.tar"
    mkdir -p "$cache"
    find "$cache" -maxdepth 1 -name 'debian-12-*.tar' -mtime +30 -delete
    if [[ -s $full && -s $slim ]]; then
        log "base images from the cache ($full; mirror $mirror, Release of $release)"
    else
        log "making the base images: debootstrap --variant=minbase bookworm from $mirror"
        local rootfs="$tmp/rootfs" t0=$SECONDS
        if ! debootstrap --variant=minbase --arch="$arch" bookworm "$rootfs" "$mirror" >"$artifacts/debootstrap.log" 2>&1; then
            tail -n 20 "$artifacts/debootstrap.log" >&2
            log "debootstrap failed (log: $artifacts/debootstrap.log)"
            return 1
        fi
        # As the official image: Debian's sources with updates and security, no package lists or
        # downloaded packages, apt set up for containers, no host files.
        rm -f "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs/etc/apt/sources.list"
        rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/* "$rootfs/debootstrap"
        find "$rootfs/var/log" -type f -delete
        mkdir -p "$rootfs/var/lib/apt/lists/partial"
        : >"$rootfs/etc/resolv.conf"
        echo localhost >"$rootfs/etc/hostname"
        : >"$rootfs/etc/machine-id"
        cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
        cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
        echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
        echo 'Acquire::GzipIndexes "true";' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
        echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
        # A mirror frozen in time (a snapshot) needs apt told so, here as inside the images.
        grep -hsE '^[[:space:]]*Acquire::Check-(Valid-Until|Date)[[:space:]]' /etc/apt/apt.conf /etc/apt/apt.conf.d/* \
            >"$rootfs/etc/apt/apt.conf.d/99mirror-snapshot" || rm -f "$rootfs/etc/apt/apt.conf.d/99mirror-snapshot"
        tar --numeric-owner -C "$rootfs" -cf "$full.part" .
        # -slim as the official one: no documentation, manual pages or translations (copyrights stay).
        cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
DPKG
        find "$rootfs/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
        find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
        rm -rf "$rootfs"/usr/share/info/* "$rootfs"/usr/share/linda/* "$rootfs"/usr/share/lintian/overrides/* \
            "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/man/*
        tar --numeric-owner -C "$rootfs" -cf "$slim.part" .
        rm -rf "$rootfs"
        find "$cache" -maxdepth 1 -name 'debian-12-*.tar' -delete
        mv "$full.part" "$full"
        mv "$slim.part" "$slim"
        log "base images made in $((SECONDS - t0)) s and cached in $cache"
    fi
    docker import --change 'CMD ["bash"]' --message "debootstrap --variant=minbase bookworm $mirror" \
        "$full" debian:12 >/dev/null
    docker import --change 'CMD ["bash"]' --message "debootstrap --variant=minbase bookworm $mirror, slim" \
        "$slim" debian:12-slim >/dev/null
    log "base images: debian:12 $(docker image inspect -f '{{.Size}}' debian:12 | awk '{ printf "%.0f MB", $1 / 1e6 }')," \
        "debian:12-slim $(docker image inspect -f '{{.Size}}' debian:12-slim | awk '{ printf "%.0f MB", $1 / 1e6 }')"
}

if ! docker image inspect debian:12 debian:12-slim >/dev/null 2>&1; then
    make_base_images || exit 1
fi

# ---------------------------------------------------------------------------- build
export DOCKER_BUILDKIT=1
status=0

# `docker build` of context $1 with its output in $2; prints the seconds it took.
build() {
    local context=$1 output=$2 tag=$3 t0=$SECONDS
    if ! docker build --network host --progress plain -t "$tag" "$context" >"$output" 2>&1; then
        tail -n 40 "$output" >&2
        log "docker build failed after $((SECONDS - t0)) s (log: $output)" >&2
        return 1
    fi
    echo $((SECONDS - t0))
}

log "building $image from the Dockerfile (log: $artifacts/build.log)"
if ! cold=$(build "$root" "$artifacts/build.log" "$image"); then
    exit 1
fi
size=$(docker image inspect -f '{{.Size}}' "$image" | awk '{ printf "%.0f", $1 / 1e6 }')
log "image $image built in ${cold} s; its size: ${size} MB"

# ---------------------------------------------------------------------------- checks
log "== image checks (pytest tests/container)"
BIDDING_IMAGE=$image DOCKER=$docker_cli BIDDING_IMAGE_SIZE_MB=$size \
    /usr/bin/python3 -m pytest -q -s "$root/tests/container" "$@" || status=1

# ---------------------------------------------------------------------------- warm rebuild
warm=skipped
if [[ ${CONTAINER_TEST_WARM:-1} != 0 ]]; then
    log "== warm rebuild after a one-line source change (a copy of the checkout)"
    context="$tmp/context"
    mkdir -p "$context"
    # The build context without what .dockerignore drops anyway and is large (docker applies the
    # copied .dockerignore to the rest).
    tar -C "$root" --exclude=./.git --exclude=./build --exclude='./build-*' --exclude='./cmake-build-*' \
        --exclude=./.cache --exclude=./.local --exclude=./test-artifacts --exclude=node_modules -cf - . |
        tar -C "$context" -xf -
    source_file=$(cd "$context" && ls src/main.cpp 2>/dev/null || find src -name '*.cpp' | sort | head -n 1)
    echo "// container-test.sh: a one-line change for the warm rebuild" >>"$context/$source_file"
    if warm=$(build "$context" "$artifacts/build-warm.log" "$image-warm"); then
        # BuildKit's plain output: "#7 [build 4/9] RUN scripts/install-deps.sh build ..." then "#7 CACHED".
        step_cached() {
            local id
            id=$(grep -m1 -E "^#[0-9]+ \[[^]]+\] $1" "$artifacts/build-warm.log" | cut -d' ' -f1)
            [[ -n $id ]] && grep -qx -- "$id CACHED" "$artifacts/build-warm.log"
        }
        if step_cached 'RUN scripts/install-deps.sh'; then
            log "the dependency layer (RUN scripts/install-deps.sh build) came from the cache"
        else
            log "FAILED: the warm rebuild installed the build dependencies again (log: $artifacts/build-warm.log)" >&2
            status=1
        fi
        if step_cached 'RUN .*scripts/build.sh'; then
            log "FAILED: the warm rebuild did not compile the changed $source_file" >&2
            status=1
        fi
        step_cached 'RUN apt-get update' && log "the runtime stage's packages came from the cache too"
        log "warm rebuild after changing $source_file: ${warm} s"
    else
        warm=failed
        status=1
    fi
fi

[[ $warm =~ ^[0-9]+$ ]] && warm="$warm s"
log "summary: cold build ${cold} s, image ${size} MB, warm rebuild ${warm}, whole run $((SECONDS - started)) s"
if ((status != 0)); then
    log "FAILED (see above; logs in $artifacts)" >&2
fi
exit "$status"
