"""The Kubernetes deployment (k8s/, for a local Kind cluster), checked without a cluster.

k8s/ is rendered with `kubectl kustomize` from a temporary copy in which secrets.env is made from
secrets.env.example (the developer's own k8s/secrets.env is never read or touched), and what
matters is checked against the real binary: every variable `bidding-server config-vars` names
is provided to each bidding-server container, the subcommands and options the containers run
are ones `bidding-server --help` lists, no secret sits in a ConfigMap, the probes, ports,
ingress, drain timing, security context and the supporting objects are as the server needs.

Needs kubectl (for `kubectl kustomize`) and Debian's python3-yaml; either missing fails the
tests with a message saying so, as does a binary without `config-vars`.
"""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import harness

try:
    import yaml
except ImportError:  # reported by the fixtures as a failure, not a skip
    yaml = None

K8S = harness.ROOT / "k8s"
NAMESPACE = "bidding"
INGRESS_HOST = "bidding-app.local"
APP_PORT = 8000
APP_UID = 10001
# Variables the server reads that are alternatives to others, deliberately not provided:
# DATABASE_URL overrides the five POSTGRES_* variables, POSTGRESS_PASSWORD is an old alias.
ALTERNATIVES = {"DATABASE_URL", "POSTGRESS_PASSWORD"}
SECRET_KEYS = {"SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD"}
SECRET_LOOKING = re.compile(r"PASSWORD|SECRET|TOKEN", re.IGNORECASE)


# --------------------------------------------------------------------------- fixtures

def _require_yaml():
    if yaml is None:
        pytest.fail("the Python module yaml is missing: install Debian's python3-yaml "
                    "(apt-get install python3-yaml; it belongs in packages.txt) and run with /usr/bin/python3")
    return yaml


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    """Every object `kubectl kustomize` renders from a copy of k8s/ with secrets.env = secrets.env.example."""
    _require_yaml()
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not on PATH: it renders k8s/ (`kubectl kustomize`); install it to run these checks")
    assert (K8S / "kustomization.yaml").is_file(), f"{K8S}/kustomization.yaml is missing"
    assert (K8S / "secrets.env.example").is_file(), f"{K8S}/secrets.env.example is missing"
    with tempfile.TemporaryDirectory(prefix="bidding-k8s-") as tmp:
        copy = Path(tmp) / "k8s"
        shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("secrets.env"))
        # As README.md's step 3 has the operator do: the example with random values (ENV=production
        # refuses the example's SECRET_KEY).
        (copy / "secrets.env").write_text(randomized_secrets((copy / "secrets.env.example").read_text()))
        result = subprocess.run([kubectl, "kustomize", str(copy)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"kubectl kustomize k8s failed ({result.returncode}):\n{result.stderr}"
    rendered = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert rendered, "kubectl kustomize k8s rendered nothing"
    return rendered


def randomized_secrets(example: str) -> str:
    """secrets.env.example with every value replaced by a random one of letters and digits."""
    import secrets as random_source
    lines = []
    for line in example.splitlines():
        key, eq, _ = line.partition("=")
        if eq and not line.lstrip().startswith("#"):
            line = f"{key}={random_source.token_hex(24)}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _run_binary(*args: str) -> subprocess.CompletedProcess:
    binary = harness.SERVER_BINARY
    if not (binary.is_file() and binary.stat().st_mode & 0o111):
        pytest.fail(f"the server binary {binary} does not exist or is not executable: build it with "
                    "scripts/build.sh or point BIDDING_SERVER at it")
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=30,
                          env=harness.clean_env(), cwd=harness.neutral_dir())


_binary_answers: dict[str, Any] = {}


def server_config_vars() -> set[str]:
    """The environment variables the server reads, as `bidding-server config-vars` lists them.
    Called inside the tests (not a fixture), so that an old binary makes them FAIL, not ERROR."""
    if "config-vars" in _binary_answers:
        return _binary_answers["config-vars"]
    result = _run_binary("config-vars")
    assert result.returncode == 0, (
        f"`{harness.SERVER_BINARY} config-vars` failed ({result.returncode}): the binary must list the "
        f"variables it reads, one per line.\nstdout: {result.stdout}\nstderr: {result.stderr}")
    names = set()
    for line in result.stdout.splitlines():
        match = re.match(r"\s*([A-Z][A-Z0-9_]*)\b", line)
        if match:
            names.add(match.group(1))
    assert {"APP_PORT", "SECRET_KEY", "POSTGRES_HOST"} <= names, (
        f"`bidding-server config-vars` printed no recognizable variable list:\n{result.stdout}")
    _binary_answers["config-vars"] = names
    return names


def server_help() -> str:
    if "--help" not in _binary_answers:
        result = _run_binary("--help")
        assert result.returncode == 0, f"`bidding-server --help` failed ({result.returncode}): {result.stderr}"
        _binary_answers["--help"] = result.stdout
    return _binary_answers["--help"]


# --------------------------------------------------------------------------- helpers

def objects(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def named(docs: list[dict], kind: str, name: str) -> dict:
    found = [d for d in objects(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} named {name}, found {len(found)}"
    return found[0]


def is_app_image(image: str) -> bool:
    return image.split("@")[0].rsplit(":", 1)[0].rsplit("/", 1)[-1] == "bidding-server"


def pod_spec(workload: dict) -> dict:
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return workload["spec"]["template"]["spec"]


def app_containers(workload: dict) -> list[dict]:
    spec = pod_spec(workload)
    return [c for c in spec.get("initContainers", []) + spec.get("containers", []) if is_app_image(c["image"])]


def app_workloads(docs: list[dict]) -> list[dict]:
    """Every workload running the bidding-server image."""
    kinds = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
    return [d for d in docs if d.get("kind") in kinds and app_containers(d)]


def app_deployment(docs: list[dict]) -> dict:
    found = [d for d in objects(docs, "Deployment") if app_containers(d)]
    assert len(found) == 1, f"expected one Deployment of the bidding-server image, found {len(found)}"
    return found[0]


def serving_container(deployment: dict) -> dict:
    containers = [c for c in pod_spec(deployment)["containers"] if is_app_image(c["image"])]
    assert len(containers) == 1, "the app Deployment must have one bidding-server container"
    return containers[0]


def job(docs: list[dict]) -> dict:
    found = [d for d in objects(docs, "Job") if app_containers(d)]
    assert len(found) == 1, f"expected one Job of the bidding-server image (migrations), found {len(found)}"
    return found[0]


def config_maps(docs: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d.get("data") or {} for d in objects(docs, "ConfigMap")}


def secrets(docs: list[dict]) -> dict[str, set[str]]:
    return {d["metadata"]["name"]: set(d.get("data") or {}) | set(d.get("stringData") or {})
            for d in objects(docs, "Secret")}


def the_config_map(docs: list[dict]) -> dict:
    """The ConfigMap the app Deployment takes its environment from."""
    refs = [e["configMapRef"]["name"] for e in serving_container(app_deployment(docs)).get("envFrom", [])
            if "configMapRef" in e]
    assert len(refs) == 1, f"the app container must take one ConfigMap through envFrom, has {refs}"
    return config_maps(docs)[refs[0]]


def provided_env(container: dict, docs: list[dict]) -> set[str]:
    """The variable names a container gets from env and from the ConfigMaps/Secrets of envFrom,
    each reference checked to name an object that is rendered."""
    names = {e["name"] for e in container.get("env", [])}
    cms, secs = config_maps(docs), secrets(docs)
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            ref = source["configMapRef"]["name"]
            assert ref in cms, f"{container['name']}: envFrom names the ConfigMap {ref}, which is not rendered"
            names |= {prefix + k for k in cms[ref]}
        if "secretRef" in source:
            ref = source["secretRef"]["name"]
            assert ref in secs, f"{container['name']}: envFrom names the Secret {ref}, which is not rendered"
            names |= {prefix + k for k in secs[ref]}
    for entry in container.get("env", []):
        source = entry.get("valueFrom") or {}
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            assert ref["key"] in cms.get(ref["name"], {}), f"{container['name']}: {entry['name']} refers to a missing {ref}"
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            assert ref["key"] in secs.get(ref["name"], set()), f"{container['name']}: {entry['name']} refers to a missing {ref}"
    return names


def selects(selector: dict, labels: dict) -> bool:
    match = selector.get("matchLabels", selector)
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def pod_labels(workload: dict) -> dict:
    return workload["spec"]["template"]["metadata"].get("labels", {})


def resolve_container_port(container: dict, port: Any) -> int:
    if isinstance(port, int):
        return port
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    assert port in ports, f"{container['name']}: the port {port!r} is not a named containerPort ({ports})"
    return ports[port]


def service_for(docs: list[dict], workload: dict) -> dict:
    services = [s for s in objects(docs, "Service") if selects(s["spec"].get("selector", {}), pod_labels(workload))]
    assert len(services) == 1, (
        f"expected one Service selecting the pods of {workload['kind']} {workload['metadata']['name']}, "
        f"found {[s['metadata']['name'] for s in services]}")
    return services[0]


def service_target(service: dict, port: Any, container: dict) -> int:
    """The containerPort a Service port (number or name) leads to."""
    for p in service["spec"]["ports"]:
        if port in (p.get("port"), p.get("name")):
            return resolve_container_port(container, p.get("targetPort", p["port"]))
    raise AssertionError(f"the Service {service['metadata']['name']} has no port {port!r}")


def effective(container: dict, spec: dict, key: str) -> Any:
    """A security setting as it applies to a container: its own, else the pod's."""
    own = (container.get("securityContext") or {}).get(key)
    return own if own is not None else (spec.get("securityContext") or {}).get(key)


def statefulset_of(docs: list[dict], image: str) -> dict:
    found = [s for s in objects(docs, "StatefulSet")
             if any(c["image"].split(":")[0].rsplit("/", 1)[-1] == image for c in pod_spec(s)["containers"])]
    assert len(found) == 1, f"expected one StatefulSet running {image}, found {len(found)}"
    return found[0]


def env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


def subcommand_and_options(container: dict) -> tuple[str, list[str]]:
    """What a bidding-server container runs: (subcommand, its arguments). The image's
    ENTRYPOINT is bidding-server and its CMD serve; command, if given, must start with it."""
    command, args = list(container.get("command") or []), list(container.get("args") or [])
    if command:
        assert Path(command[0]).name == "bidding-server", (
            f"{container['name']}: runs {command[0]}, not the bidding-server binary (no shell wrappers)")
        args = command[1:] + args
    if not args:
        args = ["serve"]
    return args[0], args[1:]


# --------------------------------------------------------------------------- the app

def test_app_deployment_replicas_port_and_probes(docs):
    deployment = app_deployment(docs)
    assert deployment["spec"]["replicas"] == 2, "the app Deployment runs 2 replicas"
    container = serving_container(deployment)
    assert subcommand_and_options(container)[0] == "serve"
    assert [p["containerPort"] for p in container["ports"]] == [APP_PORT]
    assert container["ports"][0].get("name") == "http", "the containerPort 8000 is named http"
    readiness, liveness = container.get("readinessProbe"), container.get("livenessProbe")
    assert readiness and readiness.get("httpGet"), "the app needs an HTTP readiness probe"
    assert liveness and liveness.get("httpGet"), "the app needs an HTTP liveness probe"
    assert readiness["httpGet"]["path"] == "/readyz"
    assert liveness["httpGet"]["path"] == "/healthz"
    for probe in (readiness, liveness):
        assert resolve_container_port(container, probe["httpGet"]["port"]) == APP_PORT
    resources = container.get("resources") or {}
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources.get(part) or {}), f"the app container needs cpu and memory {part}"
    for c in app_containers(deployment):
        assert c.get("imagePullPolicy") == "IfNotPresent", (
            f"{c['name']}: imagePullPolicy IfNotPresent (the image is loaded with kind load, never pulled)")


def test_app_pods_spread_across_nodes(docs):
    spec = pod_spec(app_deployment(docs))
    spread = [t for t in spec.get("topologySpreadConstraints", []) if t.get("topologyKey") == "kubernetes.io/hostname"]
    anti = ((spec.get("affinity") or {}).get("podAntiAffinity") or {}).get(
        "preferredDuringSchedulingIgnoredDuringExecution", [])
    anti = [t for t in anti if t["podAffinityTerm"].get("topologyKey") == "kubernetes.io/hostname"]
    assert spread or anti, "the app pods must be spread across nodes (kubernetes.io/hostname)"
    labels = pod_labels(app_deployment(docs))
    for term in spread:
        assert selects(term["labelSelector"], labels), "the spread constraint must select the app's own pods"
    for term in anti:
        assert selects(term["podAffinityTerm"]["labelSelector"], labels), "the anti-affinity must select the app's pods"


def test_every_variable_the_server_reads_is_provided(docs):
    needed = server_config_vars() - ALTERNATIVES
    for workload in app_workloads(docs):
        for container in app_containers(workload):
            missing = needed - provided_env(container, docs)
            assert not missing, (
                f"{workload['kind']} {workload['metadata']['name']}, container {container['name']}: the server reads "
                f"{sorted(missing)}, which neither its ConfigMap nor its Secret (envFrom or env) provides")
            given = provided_env(container, docs) & (ALTERNATIVES | {"DATABASE_URL"})
            assert not given, f"{container['name']}: {sorted(given)} would override the POSTGRES_* settings: do not provide"


def test_configuration_names_only_variables_the_server_reads(docs):
    """A key in config.env or secrets.env that the server does not read is a typo."""
    keys = set(the_config_map(docs)) | set(env_file(K8S / "secrets.env.example"))
    unknown = keys - server_config_vars()
    assert not unknown, f"k8s/config.env or secrets.env.example sets {sorted(unknown)}, which the server does not read"


def test_no_secret_in_any_config_map_and_all_in_the_secret(docs):
    for name, data in config_maps(docs).items():
        leaked = {k for k in data if k in SECRET_KEYS or SECRET_LOOKING.search(k)}
        assert not leaked, f"the ConfigMap {name} holds {sorted(leaked)}: secrets belong in the Secret"
    container = serving_container(app_deployment(docs))
    secret_refs = [e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e]
    assert len(secret_refs) == 1, f"the app takes one Secret through envFrom, has {secret_refs}"
    keys = secrets(docs)[secret_refs[0]]
    assert SECRET_KEYS <= keys, f"the Secret {secret_refs[0]} lacks {sorted(SECRET_KEYS - keys)}"


def test_the_binary_accepts_the_rendered_configuration(docs):
    """The ConfigMap and Secret as the pods get them pass the server's own validation (exit 2
    names a bad variable): `migrate` gets as far as connecting, here to a port where nothing
    listens, so it must fail with 1 (database unavailable) and not 2 (bad configuration)."""
    container = serving_container(app_deployment(docs))
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_maps(docs)[source["configMapRef"]["name"]])
        if "secretRef" in source:
            secret = named(docs, "Secret", source["secretRef"]["name"])
            env.update({k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()})
            env.update(secret.get("stringData") or {})
    env.update(POSTGRES_HOST="127.0.0.1", POSTGRES_PORT=str(harness.free_port()))
    binary = harness.SERVER_BINARY
    if not (binary.is_file() and binary.stat().st_mode & 0o111):
        pytest.fail(f"the server binary {binary} does not exist or is not executable")
    result = subprocess.run([str(binary), "migrate"], capture_output=True, text=True, timeout=60,
                            env=harness.clean_env(env), cwd=harness.neutral_dir())
    assert result.returncode == 1, (
        f"`bidding-server migrate` with the rendered ConfigMap and Secret exited {result.returncode}, expected 1 "
        f"(database unavailable): the configuration must be valid.\nstderr: {result.stderr}")


def test_the_example_secret_key_is_refused_in_production(docs):
    """Applied as is, secrets.env.example would sign tokens and bus messages with a key anybody can
    read in this repository: the pods refuse to start (exit 2, naming SECRET_KEY)."""
    env = dict(the_config_map(docs))
    env.update(env_file(K8S / "secrets.env.example"))
    env.update(POSTGRES_HOST="127.0.0.1", POSTGRES_PORT=str(harness.free_port()))
    assert env.get("ENV") == "production"
    result = subprocess.run([str(harness.SERVER_BINARY), "migrate"], capture_output=True, text=True, timeout=60,
                            env=harness.clean_env(env), cwd=harness.neutral_dir())
    assert result.returncode == 2 and "SECRET_KEY" in result.stderr, (
        f"ENV=production with the example SECRET_KEY must refuse to start (exit 2 naming SECRET_KEY), got "
        f"{result.returncode}: {result.stderr}")
    assert env["SECRET_KEY"] not in result.stderr, "the key itself must not be printed"


def test_secrets_example_and_gitignore():
    example = env_file(K8S / "secrets.env.example")
    assert set(example) == SECRET_KEYS, f"secrets.env.example holds {sorted(example)}, expected {sorted(SECRET_KEYS)}"
    key = example["SECRET_KEY"]
    assert len(key) >= 32, "the SECRET_KEY placeholder must be valid for ENV=production (at least 32 characters)"
    assert "change" in key.lower(), "the SECRET_KEY placeholder must say that it is to be changed"
    assert "change" in example["POSTGRES_PASSWORD"].lower(), "the POSTGRES_PASSWORD placeholder must say so too"
    assert "change" in example["REDIS_PASSWORD"].lower(), "the REDIS_PASSWORD placeholder must say so too"
    ignored = subprocess.run(["git", "-C", str(harness.ROOT), "check-ignore", "-q", "k8s/secrets.env"])
    assert ignored.returncode == 0, "k8s/secrets.env must be git-ignored (it holds the real secrets)"


def test_ingress_routes_websockets_to_the_app(docs):
    ingresses = objects(docs, "Ingress")
    assert len(ingresses) == 1, f"expected one Ingress, found {len(ingresses)}"
    ingress = ingresses[0]
    spec = ingress["spec"]
    assert spec.get("ingressClassName") == "nginx"
    rules = spec["rules"]
    assert [r.get("host") for r in rules] == [INGRESS_HOST]
    paths = rules[0]["http"]["paths"]
    root = [p for p in paths if p["path"] == "/" and p.get("pathType") == "Prefix"]
    assert root, "the Ingress routes / (Prefix) to the app"
    backend = root[0]["backend"]["service"]
    deployment = app_deployment(docs)
    service = service_for(docs, deployment)
    assert backend["name"] == service["metadata"]["name"], "the Ingress must route to the app Service"
    port = backend["port"].get("number", backend["port"].get("name"))
    assert service_target(service, port, serving_container(deployment)) == APP_PORT

    annotations = ingress["metadata"].get("annotations") or {}
    prefix = "nginx.ingress.kubernetes.io/"
    assert annotations.get(prefix + "proxy-http-version") == "1.1"
    idle = float(the_config_map(docs)["IDLE_TIMEOUT"])
    for name in ("proxy-read-timeout", "proxy-send-timeout"):
        value = annotations.get(prefix + name)
        assert value is not None and re.fullmatch(r"\d+", str(value)), (
            f"the Ingress needs {prefix}{name} as a whole number of seconds, has {value!r}")
        assert int(value) > idle, f"{name} {value} s must exceed IDLE_TIMEOUT {idle} s, or nginx cuts quiet clients"
    host_list = [h.strip().lower() for h in the_config_map(docs)["ALLOWED_HOSTS"].split(",")]
    assert INGRESS_HOST in host_list and "localhost" in host_list, (
        f"ALLOWED_HOSTS must admit {INGRESS_HOST} and localhost, is {host_list}")


def test_drain_fits_in_the_grace_period(docs):
    drain = float(the_config_map(docs)["DRAIN_TIMEOUT"])
    grace = pod_spec(app_deployment(docs)).get("terminationGracePeriodSeconds", 30)
    assert grace > drain, f"terminationGracePeriodSeconds {grace} must exceed DRAIN_TIMEOUT {drain}"


def test_app_containers_run_as_non_root_on_a_read_only_filesystem(docs):
    for workload in app_workloads(docs):
        spec = pod_spec(workload)
        for c in app_containers(workload):
            where = f"{workload['kind']} {workload['metadata']['name']}, container {c['name']}"
            assert effective(c, spec, "runAsNonRoot") is True, f"{where}: runAsNonRoot"
            assert effective(c, spec, "runAsUser") == APP_UID, f"{where}: runAsUser {APP_UID} (the image's user)"
            own = c.get("securityContext") or {}
            assert own.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation false"
            assert own.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem true"
            assert "ALL" in ((own.get("capabilities") or {}).get("drop") or []), f"{where}: capabilities drop ALL"
            seccomp = effective(c, spec, "seccompProfile") or {}
            assert seccomp.get("type") == "RuntimeDefault", f"{where}: seccompProfile RuntimeDefault"
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            assert tmp and "emptyDir" in volumes.get(tmp[0]["name"], {}), f"{where}: an emptyDir on /tmp"


def dockerfile_runtime() -> dict[str, str]:
    """The last stage's USER, ENTRYPOINT, EXPOSE of the Dockerfile (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", (harness.ROOT / "Dockerfile").read_text())
    stages = re.split(r"(?im)^FROM\s", text)
    found: dict[str, str] = {}
    for line in stages[-1].splitlines():
        match = re.match(r"\s*(USER|ENTRYPOINT|EXPOSE)\s+(.*\S)", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def test_the_manifests_run_the_image_as_the_dockerfile_builds_it(docs):
    """What the real image taught (scripts/container-test.sh runs the Deployment's args and security
    context in it): the containers leave the ENTRYPOINT alone and pass a subcommand as args, and
    their runAsUser/runAsGroup/fsGroup are the image's USER, so a read-only root file system with an
    emptyDir on /tmp is all the server needs."""
    runtime = dockerfile_runtime()
    assert {"USER", "ENTRYPOINT", "EXPOSE"} <= set(runtime), f"the Dockerfile's last stage sets only {sorted(runtime)}"
    try:
        entrypoint = json.loads(runtime["ENTRYPOINT"])
    except ValueError:
        entrypoint = None
    assert entrypoint == ["bidding-server"], (
        f"the image's ENTRYPOINT {runtime['ENTRYPOINT']} must be [\"bidding-server\"]: the manifests pass only args")
    uid, _, gid = runtime["USER"].partition(":")
    assert uid.isdigit() and gid.isdigit(), f"the Dockerfile's USER {runtime['USER']} must be numeric uid:gid"
    exposed = {int(p.split("/")[0]) for p in runtime["EXPOSE"].split()}
    assert APP_PORT in exposed and int(uid) == APP_UID
    for workload in app_workloads(docs):
        spec = pod_spec(workload)
        for c in app_containers(workload):
            where = f"{workload['kind']} {workload['metadata']['name']}, container {c['name']}"
            assert c["image"] == "bidding-server:latest", (
                f"{where}: image {c['image']}, but README.md builds and loads bidding-server:latest")
            assert c.get("command") in (None, entrypoint), (
                f"{where}: command {c.get('command')} replaces the image's ENTRYPOINT {entrypoint}; pass the "
                "subcommand as args")
            args = c.get("args") or []
            assert args and not args[0].startswith("-") and Path(args[0]).name != "bidding-server", (
                f"{where}: args {args} must start with a subcommand (the ENTRYPOINT is bidding-server)")
            assert effective(c, spec, "runAsUser") == int(uid) and effective(c, spec, "runAsGroup") == int(gid), (
                f"{where}: runAsUser/runAsGroup must be the image's USER {uid}:{gid}")
        if spec.get("securityContext", {}).get("fsGroup") is not None:
            assert spec["securityContext"]["fsGroup"] == int(gid), f"{workload['metadata']['name']}: fsGroup {gid}"
    for c in pod_spec(app_deployment(docs))["containers"]:
        if is_app_image(c["image"]):
            assert {p["containerPort"] for p in c.get("ports", [])} <= exposed, (
                f"{c['name']}: its containerPorts must be ones the image EXPOSEs ({sorted(exposed)})")


def test_job_runs_existing_subcommands_with_wait(docs):
    migrate = job(docs)
    spec = migrate["spec"]
    assert 0 <= spec.get("backoffLimit", 6) <= 5, "the migration Job needs a small backoffLimit"
    assert pod_spec(migrate).get("restartPolicy") in ("Never", "OnFailure")
    subcommand, options = subcommand_and_options(app_containers(migrate)[0])
    assert "--wait" in options, "the Job waits for Postgres with --wait (no shell loop)"
    wait = options[options.index("--wait") + 1] if options.index("--wait") + 1 < len(options) else ""
    assert re.fullmatch(r"\d+", wait) and int(wait) > 0, f"--wait takes a number of seconds, has {wait!r}"
    assert subcommand == "migrate", f"the Job runs migrate, not {subcommand}"
    # Whatever any bidding-server container runs must exist in the binary.
    help_text = server_help()
    for workload in app_workloads(docs):
        for container in app_containers(workload):
            subcommand, options = subcommand_and_options(container)
            assert re.search(rf"(?m)^\s*(bidding-server\s+)?\[?{re.escape(subcommand)}\b", help_text), (
                f"{container['name']} runs `bidding-server {subcommand}`, which `bidding-server --help` does not list:\n"
                f"{help_text}")
            for option in (o for o in options if o.startswith("--")):
                assert re.search(rf"{re.escape(option)}\b", help_text), (
                    f"{container['name']} passes {option}, which `bidding-server --help` does not mention:\n{help_text}")


def test_disruption_budget_and_autoscaler(docs):
    deployment = app_deployment(docs)
    labels = pod_labels(deployment)
    pdbs = [p for p in objects(docs, "PodDisruptionBudget") if selects(p["spec"]["selector"], labels)]
    assert len(pdbs) == 1, "one PodDisruptionBudget covers the app pods"
    assert pdbs[0]["spec"].get("minAvailable") == 1
    hpas = [h for h in objects(docs, "HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"]["kind"] == "Deployment"
            and h["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]]
    assert len(hpas) == 1, "one HorizontalPodAutoscaler scales the app Deployment"
    hpa = hpas[0]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] > 2
    metrics = [m for m in hpa["spec"]["metrics"] if m["type"] == "Resource" and m["resource"]["name"] == "cpu"]
    assert metrics, "the HorizontalPodAutoscaler scales on CPU"


def test_postgres_and_redis(docs):
    config = the_config_map(docs)
    postgres = statefulset_of(docs, "postgres")
    container = pod_spec(postgres)["containers"][0]
    assert container["image"] == "postgres:15"
    assert postgres["spec"].get("volumeClaimTemplates"), "Postgres keeps its data in a volumeClaimTemplate"
    claims = {t["metadata"]["name"] for t in postgres["spec"]["volumeClaimTemplates"]}
    env = {e["name"]: e for e in container.get("env", [])}
    assert {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"} <= provided_env(container, docs)
    assert "value" not in env.get("POSTGRES_PASSWORD", {}), "the Postgres password comes from the Secret"
    mounts = [m["mountPath"].rstrip("/") for m in container["volumeMounts"] if m["name"] in claims]
    pgdata = env.get("PGDATA", {}).get("value", "")
    assert any(pgdata.startswith(m + "/") for m in mounts), (
        f"PGDATA ({pgdata!r}) must be a subdirectory of the claimed volume ({mounts})")
    probe = " ".join((container.get("readinessProbe") or {}).get("exec", {}).get("command", []))
    assert "pg_isready" in probe, "Postgres is ready when pg_isready says so"
    service = service_for(docs, postgres)
    assert service["metadata"]["name"] == config["POSTGRES_HOST"], "POSTGRES_HOST names the Postgres Service"
    assert service_target(service, int(config["POSTGRES_PORT"]), container) == 5432

    redis = statefulset_of(docs, "redis")
    container = pod_spec(redis)["containers"][0]
    assert container["image"] == "redis:7"
    probe = " ".join((container.get("readinessProbe") or {}).get("exec", {}).get("command", []))
    assert "redis-cli" in probe and "ping" in probe and "PONG" in probe, (
        f"Redis is ready when it answers PONG (with a password, a bare `redis-cli ping` exits 0 on NOAUTH): {probe}")
    # Only this deployment's servers may publish: Redis requires the password the app gets.
    args = container.get("args", [])
    assert "--requirepass" in args, f"the Redis StatefulSet must require a password: {args}"
    password = args[args.index("--requirepass") + 1]
    assert password == "$(REDIS_PASSWORD)", f"the password comes from the container's environment, got {password!r}"
    redis_env = {e["name"]: e for e in container.get("env", [])}
    app_secret = [e["secretRef"]["name"] for e in serving_container(app_deployment(docs)).get("envFrom", [])
                  if "secretRef" in e][0]
    for name in ("REDIS_PASSWORD", "REDISCLI_AUTH"):
        ref = redis_env.get(name, {}).get("valueFrom", {}).get("secretKeyRef", {})
        assert ref == {"name": app_secret, "key": "REDIS_PASSWORD"}, (
            f"Redis's {name} must come from the app's Secret {app_secret}, key REDIS_PASSWORD: {ref}")
    assert "REDIS_PASSWORD" in secrets(docs)[app_secret]
    service = service_for(docs, redis)
    url = urlsplit(config["REDIS_URL"])
    assert url.scheme == "redis" and url.hostname == service["metadata"]["name"] and not url.password, (
        "REDIS_URL in config.env names the Redis Service (its password is REDIS_PASSWORD, in the Secret)")
    assert service_target(service, url.port or 6379, container) == 6379


def test_everything_lives_in_the_namespace(docs):
    namespaces = objects(docs, "Namespace")
    assert [n["metadata"]["name"] for n in namespaces] == [NAMESPACE]
    for d in docs:
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == NAMESPACE, f"{d['kind']} {d['metadata']['name']} is not in {NAMESPACE}"


def test_kind_config():
    config = _require_yaml().safe_load((K8S / "kind-config.yaml").read_text())
    assert config["kind"] == "Cluster" and config["apiVersion"].startswith("kind.x-k8s.io/")
    roles = [n["role"] for n in config["nodes"]]
    assert sorted(roles) == ["control-plane", "worker", "worker"], f"one control-plane and two workers, got {roles}"
    control = next(n for n in config["nodes"] if n["role"] == "control-plane")
    mapped = {(m["containerPort"], m["hostPort"]) for m in control.get("extraPortMappings", [])}
    assert (80, 80) in mapped, "the control-plane maps the host's port 80 to the ingress controller"
    labelled = (control.get("labels") or {}).get("ingress-ready") == "true" or any(
        "ingress-ready=true" in patch for patch in control.get("kubeadmConfigPatches", []))
    assert labelled, "the control-plane carries ingress-ready=true (the kind ingress-nginx manifest selects it)"
