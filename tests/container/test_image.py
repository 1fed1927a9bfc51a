"""The image built from the Dockerfile, run for real: what `docker compose up` and the Kubernetes
manifests rely on.

- the image's configuration (user 10001, entrypoint, command, port, healthcheck, stop signal) and
  contents: no compiler, no headers, no -dev package; its size is printed;
- docker-compose.yml's migrate command (`migrate --wait 60 --seed`) creates and seeds the tables,
  and so does the Kubernetes init container's command, with the pods' security context;
- a container serves as uid 10001 with docker-compose.yml's app command, answers /readyz, and a
  WebSocket client bids through it (new_bid, bid_accepted, stored in Postgres);
- a second container, run as the Kubernetes manifests run the pods (their args, a read-only root
  file system with /tmp in memory, no capabilities, no privilege escalation), shares the bids with
  the first through Postgres and Redis, both ways;
- the image's HEALTHCHECK turns the container healthy, and docker-compose.yml's healthcheck command
  passes inside it (and fails against a port where nothing listens);
- `docker stop` drains: the clients get server_shutdown and close 1012, the container exits 0
  within DRAIN_TIMEOUT, and the other pod serves on.
"""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import yaml

import harness
from containers import DRAIN_TIMEOUT, IMAGE, docker, http_get, inspect
from harness import WsClient, close_clients, open_clients, run_async

ROOT = harness.ROOT
APP_UID = 10001
SHUTDOWN = {"type": "server_shutdown", "reconnect": True}


def compose_services() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def k8s_app_pod_spec() -> dict:
    for doc in yaml.safe_load_all((ROOT / "k8s" / "deployment.yaml").read_text()):
        if doc and doc.get("kind") == "Deployment":
            return doc["spec"]["template"]["spec"]
    raise AssertionError("k8s/deployment.yaml has no Deployment")


def k8s_options(container: dict, pod_spec: dict) -> tuple[str, ...]:
    """docker run options for what the manifests' securityContext asks of the container."""
    own = container.get("securityContext") or {}
    pod = pod_spec.get("securityContext") or {}
    options: list[str] = []
    uid, gid = own.get("runAsUser", pod.get("runAsUser")), own.get("runAsGroup", pod.get("runAsGroup"))
    if uid is not None:
        options += ["--user", f"{uid}:{gid if gid is not None else uid}"]
    if own.get("readOnlyRootFilesystem"):
        options.append("--read-only")
    if "ALL" in ((own.get("capabilities") or {}).get("drop") or []):
        options += ["--cap-drop", "ALL"]
    if own.get("allowPrivilegeEscalation") is False:
        options += ["--security-opt", "no-new-privileges"]
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    for volume in pod_spec.get("volumes", []):
        if "emptyDir" in volume and volume["name"] in mounts:
            options += ["--tmpfs", f"{mounts[volume['name']]}:rw,nosuid,nodev,size=16m"]
    return tuple(options)


def command_of(service: dict) -> list[str]:
    command = service.get("command")
    return command.split() if isinstance(command, str) else [str(w) for w in command]


# --------------------------------------------------------------------------- the image itself

def test_the_image_configuration():
    config = json.loads(inspect(IMAGE, "{{json .Config}}"))
    assert config.get("User") == f"{APP_UID}:{APP_UID}", (
        f"the image runs as {config.get('User')!r}, not {APP_UID}:{APP_UID}: the manifests' runAsUser and "
        "runAsNonRoot expect that uid")
    assert config.get("Entrypoint") == ["bidding-server"], (
        f"the image's ENTRYPOINT is {config.get('Entrypoint')}: compose's `command:` and the manifests' `args:` "
        "are bidding-server subcommands and need it to be exactly [\"bidding-server\"]")
    assert config.get("Cmd") == ["serve"], f"the image's CMD is {config.get('Cmd')}, expected [\"serve\"]"
    assert "8000/tcp" in (config.get("ExposedPorts") or {}), f"the image exposes {config.get('ExposedPorts')}"
    assert (config.get("Healthcheck") or {}).get("Test") == ["CMD", "bidding-server", "healthcheck"], (
        f"the image's HEALTHCHECK is {config.get('Healthcheck')}")
    assert config.get("StopSignal") in (None, "SIGTERM"), f"docker stop must send SIGTERM, sends {config.get('StopSignal')}"
    version = docker("run", "--rm", "--network", "host", IMAGE, "--version", timeout=60).stdout.strip()
    assert "bidding-server" in version, f"`docker run IMAGE --version` printed {version!r}"
    print(f"image {IMAGE}: {version}; user {config['User']}, entrypoint {config['Entrypoint']}, cmd {config['Cmd']}")


def test_the_runtime_image_holds_no_compiler_or_headers():
    script = r"""
for tool in gcc g++ cc c++ cpp clang clang++ ld as make cmake ccache ctest; do
    command -v "$tool" >/dev/null 2>&1 && echo "tool $(command -v "$tool")"
done
for dir in /usr/include/boost /usr/include/pqxx /usr/include/hiredis /usr/include/spdlog \
           /usr/include/nlohmann /usr/include/gtest /usr/include/openssl /usr/include/c++ /src; do
    [ -e "$dir" ] && echo "path $dir"
done
headers=$(find /usr/include /usr/local/include -type f 2>/dev/null | wc -l)
[ "$headers" -gt 0 ] && echo "headers $headers files under /usr/include"
# (gcc-12-base is not a compiler: the copyright files libgcc-s1 and libstdc++6 depend on.)
dpkg-query -W -f '${Package}\n' | grep -E -- '-dev$|^(gcc|g\+\+|cpp|binutils|build-essential|cmake|ccache)(-|$)' \
    | grep -vE '^gcc-[0-9]+-base$' | sed 's/^/package /'
echo "packages $(dpkg-query -W -f '${Package}\n' | wc -l)"
"""
    result = docker("run", "--rm", "--network", "host", "--entrypoint", "/bin/sh", IMAGE, "-c", script, timeout=60)
    lines = result.stdout.splitlines()
    found = [line for line in lines if not line.startswith("packages ")]
    assert not found, (
        "the runtime image must hold only the binary and the shared libraries it loads; it has:\n" + "\n".join(found))
    size_mb = int(inspect(IMAGE, "{{.Size}}")) / 1e6
    count = next((line.split()[1] for line in lines if line.startswith("packages ")), "?")
    print(f"image {IMAGE}: {size_mb:.0f} MB, {count} Debian packages, no compiler, no headers")
    assert size_mb < 300, f"the image is {size_mb:.0f} MB: something of the build stage came along (it was 140-190 MB)"


# --------------------------------------------------------------------------- migrate, serve, bid

@pytest.fixture(scope="module")
def migrated(pods, database):
    """docker-compose.yml's migrate command, run in the image."""
    command = command_of(compose_services()["migrate"])
    result = pods.run(*command, timeout=180)
    assert result.returncode == 0, (
        f"`docker run IMAGE {' '.join(command)}` (docker-compose.yml's migrate service) exited {result.returncode}:\n"
        f"{result.stdout}{result.stderr}")
    return command


def test_migrate_creates_and_seeds_the_tables(migrated, database, pods):
    auctions = database.query("SELECT id, name, status FROM bids_bid ORDER BY id")
    assert len(auctions) >= 3, f"`{' '.join(migrated)}` in the image must seed the demo auctions; bids_bid holds {auctions}"
    # The Kubernetes init container: its args, with the pods' security context (read-only root).
    pod_spec = k8s_app_pod_spec()
    init = pod_spec["initContainers"][0]
    result = pods.run(*init["args"], options=k8s_options(init, pod_spec), timeout=240)
    assert result.returncode == 0, (
        f"the Kubernetes init container ({init['args']}, read-only root file system, no capabilities) exited "
        f"{result.returncode} in the image:\n{result.stdout}{result.stderr}")


@pytest.fixture(scope="module")
def pod_a(migrated, pods):
    """docker-compose.yml's app command, as compose runs it."""
    pod = pods.start("a", *command_of(compose_services()["app"]))
    pod.wait_ready()
    return pod


@pytest.fixture(scope="module")
def pod_b(migrated, pods):
    """The Kubernetes Deployment's container: its args and its security context."""
    pod_spec = k8s_app_pod_spec()
    container = pod_spec["containers"][0]
    pod = pods.start("b", *container["args"], options=k8s_options(container, pod_spec))
    pod.wait_ready()
    return pod


def test_a_container_serves_as_uid_10001_and_a_bid_goes_through(pod_a, database):
    status, body = http_get(pod_a.port, "/readyz")
    ready = json.loads(body)
    assert status == 200 and ready.get("status") == "ready" and ready.get("postgres") == "ok" \
        and ready.get("redis") == "ok", f"/readyz of the container: {status} {body}"
    uid = docker("exec", pod_a.name, "id", "-u").stdout.strip()
    assert uid == str(APP_UID), f"the server runs as uid {uid} inside the container, not {APP_UID}"
    pid = inspect(pod_a.name, "{{.State.Pid}}")
    status_lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    uids = next(line.split()[1:] for line in status_lines if line.startswith("Uid:"))
    assert set(uids) == {str(APP_UID)}, f"the server process (pid {pid} on the host) has uids {uids}, not {APP_UID}"
    command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert command[:2] == [b"bidding-server", b"serve"], (
        f"the container's first process is {command}: the server must be PID 1 itself (exec form), or "
        "docker stop's SIGTERM would not reach it")

    async def scenario():
        bidder = WsClient("bidder", pod_a.ws_url(1))
        watcher = WsClient("watcher", pod_a.ws_url(1))
        await open_clients([bidder, watcher])
        try:
            price = f"{int(float(bidder.state['bid']['current_price'])) + 10}.50"
            await bidder.send_bid("ann", price, "c1")
            accepted = await bidder.wait_for(harness.is_reply("c1"), 10, "the reply to the bid")
            new_bid = await bidder.wait_for(lambda m: m.get("type") == "new_bid", 10, "the bid's new_bid")
            seen = await watcher.wait_for(lambda m: m.get("type") == "new_bid", 10, "the bid's new_bid")
        finally:
            await close_clients([bidder, watcher])
        return price, accepted, new_bid, seen

    price, accepted, new_bid, seen = run_async(scenario(), timeout=60)
    assert accepted.get("type") == "bid_accepted" and accepted.get("price") == price, f"the bid's reply: {accepted}"
    assert new_bid == seen and new_bid.get("bidder") == "ann" and new_bid.get("price") == price \
        and new_bid.get("seq") == accepted.get("seq"), f"new_bid {new_bid} / {seen} vs bid_accepted {accepted}"
    assert (accepted["seq"], "ann", price) in harness.history(database, 1), "the accepted bid must be stored in Postgres"
    print(f"container {pod_a.name} on port {pod_a.port}: uid {uid}, /readyz {body}, bid {price} accepted as seq {accepted['seq']}")


def test_two_containers_as_two_pods_share_the_bids(pod_a, pod_b, pods):
    # A new auction, made with the image's own command line.
    created = pods.run("bid", "create", "--name", "Two Containers Lot")
    assert created.returncode == 0, f"`docker run IMAGE bid create` failed: {created.stdout}{created.stderr}"
    bid_id = json.loads(created.stdout.strip().splitlines()[-1])["id"]

    async def scenario():
        on_a = WsClient("on-a", pod_a.ws_url(bid_id))
        on_b = WsClient("on-b", pod_b.ws_url(bid_id))
        await open_clients([on_a, on_b])
        try:
            base = int(float(on_a.state["bid"]["current_price"]))
            ack_a = await on_a.bid_accepted("alice", f"{base + 5}.00", "a1", timeout=10)
            seen_b = await on_b.wait_for(lambda m: m.get("type") == "new_bid" and m.get("seq") == ack_a["seq"], 10,
                                         "pod A's bid on pod B")
            ack_b = await on_b.bid_accepted("bob", f"{base + 7}.00", "b1", timeout=10)
            seen_a = await on_a.wait_for(lambda m: m.get("type") == "new_bid" and m.get("seq") == ack_b["seq"], 10,
                                         "pod B's bid on pod A")
        finally:
            await close_clients([on_a, on_b])
        return ack_a, seen_b, ack_b, seen_a

    ack_a, seen_b, ack_b, seen_a = run_async(scenario(), timeout=60)
    assert seen_b["bidder"] == "alice" and seen_b["price"] == ack_a["price"], f"pod B's client got {seen_b}"
    assert seen_a["bidder"] == "bob" and seen_a["price"] == ack_b["price"], f"pod A's client got {seen_a}"
    print(f"pods {pod_a.name} (port {pod_a.port}) and {pod_b.name} (port {pod_b.port}, read-only root, no "
          f"capabilities): a bid on each reached the other")


def test_the_healthchecks_pass_in_the_running_container(pod_a):
    # The image's HEALTHCHECK as Docker runs it (interval 10 s, start period 10 s).
    deadline = time.monotonic() + 60
    health = {}
    while time.monotonic() < deadline:
        health = json.loads(inspect(pod_a.name, "{{json .State.Health}}"))
        if health.get("Status") != "starting":
            break
        time.sleep(0.5)
    assert health.get("Status") == "healthy", (
        f"the image's HEALTHCHECK must report the serving container healthy: {health}\n{pod_a.log_tail()}")
    assert health["Log"] and health["Log"][-1]["ExitCode"] == 0, f"the last health probe: {health['Log'][-1:]}"

    # docker-compose.yml's healthcheck command for the app service, inside the container.
    test = compose_services()["app"]["healthcheck"]["test"]
    assert test[0] == "CMD", f"docker-compose.yml's app healthcheck must be an exec-form CMD: {test}"
    result = docker("exec", pod_a.name, *test[1:], check=False, timeout=30)
    assert result.returncode == 0, (
        f"docker-compose.yml's app healthcheck `{' '.join(test[1:])}` fails in the running container "
        f"({result.returncode}): {result.stdout}{result.stderr}")
    # ...and it really checks: against a port where nothing listens it fails.
    silent = harness.free_port()
    result = docker("exec", "-e", f"APP_PORT={silent}", pod_a.name, *test[1:], check=False, timeout=30)
    assert result.returncode != 0, "the healthcheck passes against a port where no server listens: it checks nothing"
    print(f"{pod_a.name}: HEALTHCHECK {health['Status']} after {len(health['Log'])} probe(s); "
          f"compose healthcheck `{' '.join(test[1:])}` exit 0")


def test_docker_stop_drains_the_clients_and_exits_0(pod_a, pod_b):
    async def scenario():
        clients = [WsClient(f"client-a{i}", pod_a.ws_url(1)) for i in range(3)]
        survivor = WsClient("client-b", pod_b.ws_url(1))
        await open_clients(clients + [survivor])
        try:
            stopped = time.monotonic()
            stop = asyncio.ensure_future(asyncio.to_thread(
                docker, "stop", "-t", str(DRAIN_TIMEOUT + 20), pod_a.name, timeout=DRAIN_TIMEOUT + 60))
            await asyncio.gather(*(c.wait_closed(DRAIN_TIMEOUT + 5, "server_shutdown and the close") for c in clients))
            await stop
            elapsed = time.monotonic() - stopped
            # The other pod serves on: a bid there is accepted after pod A is gone.
            base = int(float(survivor.state["bid"]["current_price"])) + 1000
            ack = await survivor.bid_accepted("carol", f"{base}.00", "after", timeout=10)
        finally:
            await close_clients(clients + [survivor])
        return clients, elapsed, ack

    clients, elapsed, ack = run_async(scenario(), timeout=DRAIN_TIMEOUT + 90)
    code = pod_a.exit_code()
    for client in clients:
        shutdowns = [m for m in client.messages if m.get("type") == "server_shutdown"]
        assert shutdowns == [SHUTDOWN] and client.messages[-1] == SHUTDOWN, (
            f"{client.name} must get {SHUTDOWN} once, as its last message, when docker stop drains the container: "
            f"{client.messages}")
        assert client.close_code == 1012, (
            f"{client.name}: after server_shutdown the container must close with 1012, got {client.close_code} "
            f"{client.close_reason!r}")
    assert code == 0, (
        f"after docker stop the container must exit 0 (137 means Docker had to SIGKILL it): exit code {code}\n"
        f"{pod_a.log_tail()}")
    assert elapsed < DRAIN_TIMEOUT, (
        f"docker stop took {elapsed:.1f} s, more than DRAIN_TIMEOUT ({DRAIN_TIMEOUT} s)")
    assert ack["type"] == "bid_accepted"
    print(f"docker stop {pod_a.name}: {len(clients)} clients got server_shutdown and 1012, exit 0 after {elapsed:.2f} s "
          f"(DRAIN_TIMEOUT {DRAIN_TIMEOUT} s); pod B accepted a bid afterwards")
