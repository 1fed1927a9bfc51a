# The bidding-server image: built and unit-tested on Debian 12, run from a slim Debian 12 with
# only the shared libraries the binary links, as a non-root user.
#
#   docker build -t bidding-server .
#   docker run --rm -p 8000:8000 -e DATABASE_URL=postgresql://user:password@db-host:5432/bidding bidding-server
#   docker run --rm -e DATABASE_URL=... bidding-server migrate --wait 60 --seed
#
# docker-compose.yml runs it together with Postgres and Redis (see README.md, "Running it").

# ---------------------------------------------------------------------------- build stage
FROM debian:12 AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src

# The same package list and the same script as a developer machine and CI, restricted to the
# [build] group of packages.txt, so the image and `scripts/install-deps.sh` cannot drift apart.
COPY packages.txt ./
COPY scripts/install-deps.sh ./scripts/
RUN scripts/install-deps.sh build && rm -rf /var/lib/apt/lists/*

# The source (.dockerignore keeps build output, local databases, .git and .env out).
COPY . .

# Release build with the project's own script (its `dev` preset, without the load tool, which
# the image does not ship), then the unit tests (the end-to-end suite needs Postgres and Redis:
# it runs in CI through scripts/test.sh, not here).
ARG BUILD_TYPE=RelWithDebInfo
RUN BUILD_TYPE="$BUILD_TYPE" scripts/build.sh -DBIDDING_BUILD_BENCH=OFF
RUN ctest --test-dir build --output-on-failure --timeout 120

# What the runtime stage needs: the binary (debug info stripped) and the Debian packages that
# ship the shared libraries it loads (ldd -> dpkg-query -S). The glob keeps the library's folder
# (*/x86_64-linux-gnu/libc.so.6): Debian 12 merges /lib into /usr/lib, so the path ldd prints is
# not always the one dpkg recorded.
RUN mkdir -p /out \
    && install -m 0755 build/bidding-server /out/bidding-server \
    && strip --strip-debug /out/bidding-server \
    && if ldd /out/bidding-server | grep 'not found'; then echo 'unresolved libraries' >&2; exit 1; fi \
    && ldd /out/bidding-server \
        | awk '$2 == "=>" && $3 ~ /^\// { n = split($3, p, "/"); print "*/" p[n-1] "/" p[n] }' \
        | xargs dpkg-query -S \
        | cut -d: -f1 | sort -u >/out/runtime-packages.txt \
    && echo "runtime packages:" $(cat /out/runtime-packages.txt) \
    && /out/bidding-server --version

# ---------------------------------------------------------------------------- runtime stage
FROM debian:12-slim AS runtime

COPY --from=build /out/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update -q \
    && xargs -a /tmp/runtime-packages.txt env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt

# A fixed, non-root uid/gid (Kubernetes' runAsNonRoot can check it); its home is the working
# directory, empty, so no stray .env is read.
RUN groupadd --system --gid 10001 bidding \
    && useradd --system --uid 10001 --gid bidding --home-dir /home/bidding --create-home \
        --shell /usr/sbin/nologin bidding

COPY --from=build /out/bidding-server /usr/local/bin/bidding-server

USER 10001:10001
WORKDIR /home/bidding
EXPOSE 8000

# `bidding-server healthcheck` GETs http://127.0.0.1:$APP_PORT/healthz (APP_PORT defaults to 8000):
# no curl in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["bidding-server", "healthcheck"]

# The server drains on SIGTERM within DRAIN_TIMEOUT (default 20 s): give it longer than that
# (docker stop -t 30, compose stop_grace_period, Kubernetes terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["bidding-server"]
CMD ["serve"]
