"""The container set-up files: Dockerfile, .dockerignore, docker-compose.yml, .env.example and
packages.txt with scripts/install-deps.sh.

No Docker engine is needed: Debian's `docker-compose` (1.29, packages.txt [test]) renders and
validates the compose file offline with `docker-compose config`, and the Dockerfile is read as
text. Every assertion message says what an operator would lose if it failed.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVER_BINARY = Path(os.environ.get("BIDDING_SERVER") or ROOT / "build" / "bidding-server")
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
README = ROOT / "README.md"
INSTALL_DEPS = ROOT / "scripts" / "install-deps.sh"
CONTAINER_TEST = ROOT / "scripts" / "container-test.sh"

# Variables of .env.example that only docker-compose.yml reads (interpolation), not the server.
COMPOSE_ONLY_VARIABLES = {"APP_PUBLISH"}

# What .env.example-based settings must not leak into the containers: values meant for a laptop.
LAPTOP_ENV = {
    "DATABASE_URL": "postgresql://laptop:laptop@127.0.0.1:55432/laptop",
    "POSTGRES_HOST": "localhost",
    "POSTGRES_PORT": "55432",
    "REDIS_URL": "redis://127.0.0.1:56379/0",
    "APP_PORT": "9000",
}


# --------------------------------------------------------------------------- helpers

def minimal_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """PATH, HOME and the locale only: nothing of the developer's shell (POSTGRES_*, APP_PUBLISH,
    COMPOSE_*, DOCKER_HOST) may change what docker-compose renders."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    env.update(extra or {})
    return env


def docker_compose() -> str:
    path = shutil.which("docker-compose")
    assert path, (
        "docker-compose is not installed (Debian's `docker-compose`, packages.txt [test]; run "
        "scripts/install-deps.sh): without it nothing checks docker-compose.yml before an operator's "
        "`docker compose up` does")
    return path


def render_compose(dotenv_text: str, extra_env: dict[str, str] | None = None) -> dict:
    """`docker-compose config` on a temporary copy of docker-compose.yml with `dotenv_text` as its
    .env (the checkout's own .env is never read or touched); returns the rendered YAML."""
    with tempfile.TemporaryDirectory(prefix="bidding-compose-") as tmp:
        shutil.copyfile(COMPOSE_FILE, Path(tmp) / "docker-compose.yml")
        (Path(tmp) / ".env").write_text(dotenv_text)
        result = subprocess.run(
            [docker_compose(), "--project-name", "biddingcheck", "config"],
            cwd=tmp, env=minimal_env(extra_env), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, (
        "`docker-compose config` rejects docker-compose.yml with .env.example as .env, so "
        "`cp .env.example .env && docker compose up --build` would fail for an operator:\n"
        + result.stderr)
    rendered = yaml.safe_load(result.stdout)
    assert isinstance(rendered, dict) and isinstance(rendered.get("services"), dict), (
        "`docker-compose config` printed no services: the compose file defines no stack to run")
    return rendered


def raw_compose() -> dict:
    """docker-compose.yml as written (PyYAML resolves the `<<` merge keys)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def command_words(value) -> list[str]:
    """A compose `command`/`test` (list or string) as a list of words."""
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    return [str(word) for word in value]


def depends_condition(service: dict, dependency: str) -> str | None:
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        return "service_started" if dependency in depends else None
    entry = depends.get(dependency)
    if entry is None:
        return None
    return (entry or {}).get("condition", "service_started")


def container_ports(service: dict) -> list[str]:
    """The container-side ports a service publishes, from long or short syntax."""
    ports = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            ports.append(str(port.get("target")))
        else:
            ports.append(str(port).rsplit(":", 1)[-1].split("/")[0])
    return ports


def env_example_names(commented: bool) -> set[str]:
    """NAME of every `NAME=` line of .env.example; with commented=True also `# NAME=` lines."""
    pattern = re.compile(r"^\s*(#\s*)?(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=" if commented
                         else r"^\s*()(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=")
    names = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = pattern.match(line)
        if match:
            names.add(match.group(2))
    return names


def env_example_values() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def duration_seconds(value) -> float:
    """A compose duration ("30s", "1m30s", "1m") in seconds."""
    text = str(value)
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)", text):
        total += float(amount) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[unit]
    return total


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    instructions = []
    current = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, arguments = current.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        current = ""
    if current:
        keyword, _, arguments = current.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def dockerfile_stages() -> list[dict]:
    """The Dockerfile's stages: {"from": image, "name": alias or None, "instructions": [...]}."""
    stages: list[dict] = []
    for keyword, arguments in dockerfile_instructions():
        if keyword == "FROM":
            words = [w for w in arguments.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append({"from": words[0], "name": name, "instructions": []})
        elif stages:
            stages[-1]["instructions"].append((keyword, arguments))
    return stages


def install_deps_list(*groups: str) -> list[str]:
    result = subprocess.run([str(INSTALL_DEPS), "--list", *groups], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, (
        f"scripts/install-deps.sh --list {' '.join(groups)} fails, so the set-up script and the "
        f"image cannot agree on packages:\n{result.stderr}")
    return result.stdout.split()


def config_vars() -> list[str]:
    """What the real binary says it reads: `bidding-server config-vars`, run with no configuration
    in a neutral working directory. Must exist: the checks below rely on it."""
    assert os.access(SERVER_BINARY, os.X_OK), (
        f"the server binary {SERVER_BINARY} is missing: build it with scripts/build.sh (or set "
        "BIDDING_SERVER); without it nothing checks that .env.example documents every variable")
    with tempfile.TemporaryDirectory(prefix="bidding-config-vars-") as cwd:
        result = subprocess.run([str(SERVER_BINARY), "config-vars"], cwd=cwd, env=minimal_env(),
                                capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, (
        "`bidding-server config-vars` failed (exit %d): without that list nothing proves .env.example "
        "and README.md name every variable the server reads, and an operator may miss one:\n%s"
        % (result.returncode, result.stderr.strip()))
    names = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    assert names, "`bidding-server config-vars` printed nothing: the variables cannot be checked"
    for name in names:
        assert re.fullmatch(r"[A-Z_][A-Z0-9_]*", name), (
            f"`bidding-server config-vars` printed {name!r}, not a variable name: its output is "
            "meant to be one name per line for tools and operators")
    return names


# --------------------------------------------------------------------------- docker-compose.yml

@pytest.fixture(scope="module")
def rendered():
    return render_compose(ENV_EXAMPLE.read_text())


def test_compose_has_the_four_services(rendered):
    services = rendered["services"]
    for name in ("postgres", "redis", "migrate", "app"):
        assert name in services, (
            f"docker-compose.yml has no `{name}` service: `docker compose up` would not bring up the "
            "whole stack (postgres, redis, migrate, app)")


def test_compose_postgres(rendered):
    postgres = rendered["services"]["postgres"]
    assert postgres.get("image") == "postgres:15", (
        "the postgres service is not image postgres:15: the server's migrations are written and "
        "tested against PostgreSQL 15")
    volumes = postgres.get("volumes") or []
    assert any("/var/lib/postgresql/data" in (v if isinstance(v, str) else str(v.get("target")))
               for v in volumes), (
        "the postgres service keeps /var/lib/postgresql/data in no volume: every auction and bid "
        "would be lost with the container")
    named = set((rendered.get("volumes") or {}).keys())
    assert any(isinstance(v, str) and v.split(":", 1)[0] in named for v in volumes), (
        "the postgres data is not in a named volume: `docker compose down` + `up` would not find "
        "the data again, and `down -v` would not be the documented way to drop it")
    test = " ".join(command_words((postgres.get("healthcheck") or {}).get("test")))
    assert "pg_isready" in test, (
        "the postgres service has no pg_isready healthcheck: migrate could start before the "
        "database accepts connections")


def test_compose_redis(rendered):
    redis = rendered["services"]["redis"]
    assert redis.get("image") == "redis:7", "the redis service is not image redis:7, the version the fan-out is tested with"
    test = command_words((redis.get("healthcheck") or {}).get("test"))
    assert "redis-cli" in " ".join(test) and "ping" in " ".join(test) and "PONG" in " ".join(test), (
        "the redis service has no `redis-cli ping` healthcheck that waits for PONG: the app could start "
        f"before Redis answers (with a password, a bare `redis-cli ping` exits 0 on NOAUTH): {test}")
    # Only this stack's servers may publish on its channels: Redis requires the app's password.
    words = command_words(redis.get("command"))
    assert "--requirepass" in words, f"the redis service must require a password: {words}"
    password = words[words.index("--requirepass") + 1]
    app_env = rendered["services"]["app"].get("environment") or {}
    assert password and app_env.get("REDIS_PASSWORD") == password, (
        "the app must get the password the redis service requires (REDIS_PASSWORD)")
    assert (redis.get("environment") or {}).get("REDISCLI_AUTH") == password, (
        "the healthcheck's redis-cli needs the password too (REDISCLI_AUTH)")
    own = render_compose(ENV_EXAMPLE.read_text() + "\nREDIS_PASSWORD=mine0123456789\n")["services"]
    assert "mine0123456789" in command_words(own["redis"].get("command")), "REDIS_PASSWORD in .env sets the password"
    assert own["app"]["environment"].get("REDIS_PASSWORD") == "mine0123456789"


def test_compose_migrate_runs_once_after_postgres(rendered):
    migrate = rendered["services"]["migrate"]
    words = command_words(migrate.get("command"))
    for word in ("migrate", "--wait", "--seed"):
        assert word in words, (
            f"the migrate service's command {words} lacks {word}: the stack would not create its "
            "tables, wait for Postgres, or have the demo auctions the README connects to")
    assert depends_condition(migrate, "postgres") == "service_healthy", (
        "migrate does not wait for postgres to be healthy: on a first start it races the "
        "database's initialisation and the app never starts")
    assert "build" in migrate, "migrate is not built from the Dockerfile: it would not run the same binary as the app"
    assert str(migrate.get("restart", "no")) in ("no", "False", "false"), (
        "migrate restarts: a one-shot migration would run again and again")


def test_compose_app(rendered):
    app = rendered["services"]["app"]
    assert "build" in app, "the app service is not built from the repository's Dockerfile: `docker compose up --build` would not run this code"
    assert "8000" in container_ports(app), (
        "the app does not publish container port 8000: ws://localhost:8000/ws/bid/1 from the README "
        "would not connect")
    assert depends_condition(app, "migrate") == "service_completed_successfully", (
        "the app does not wait for migrate to complete successfully: it could serve before the "
        "tables exist, or serve after a failed migration")
    assert depends_condition(app, "redis") == "service_healthy", (
        "the app does not wait for redis to be healthy: its first seconds would be not ready")
    test = " ".join(command_words((app.get("healthcheck") or {}).get("test")))
    assert "bidding-server healthcheck" in test or "/healthz" in test, (
        "the app has no healthcheck running `bidding-server healthcheck`: `docker compose ps` "
        "would never show a hung server as unhealthy")
    assert "container_name" not in app, (
        "the app sets container_name: `docker compose up --scale app=3` would fail on the name clash")
    grace = duration_seconds(app.get("stop_grace_period", "10s"))
    drain = float(env_example_values().get("DRAIN_TIMEOUT", "20"))
    assert grace > drain, (
        f"the app's stop_grace_period ({grace:g} s) is not longer than DRAIN_TIMEOUT ({drain:g} s): "
        "`docker compose stop` would SIGKILL a draining server and cut its clients off")


def test_compose_app_reads_dotenv(rendered):
    raw = raw_compose()["services"]["app"]
    env_files = raw.get("env_file") or []
    env_files = [env_files] if isinstance(env_files, str) else env_files
    paths = [os.path.normpath(str(f if isinstance(f, str) else f.get("path"))) for f in env_files]
    assert ".env" in paths, (
        "the app service does not load .env (env_file): settings an operator puts in .env would "
        "not reach the server")
    environment = rendered["services"]["app"].get("environment") or {}
    assert environment.get("SECRET_KEY") == env_example_values()["SECRET_KEY"], (
        "the rendered app environment does not carry .env's SECRET_KEY: .env does not reach the server")


def test_compose_services_win_over_a_laptop_dotenv():
    """An .env written for scripts/serve.sh or the operator's own databases must not send the
    containers to 127.0.0.1 (which, inside a container, is the container itself)."""
    dotenv = ENV_EXAMPLE.read_text() + "\n" + "".join(f"{k}={v}\n" for k, v in LAPTOP_ENV.items())
    services = render_compose(dotenv)["services"]
    for name in ("app", "migrate"):
        environment = services[name].get("environment") or {}
        assert environment.get("POSTGRES_HOST") == "postgres", (
            f"{name}: POSTGRES_HOST is {environment.get('POSTGRES_HOST')!r} with a laptop .env, not "
            "the postgres service: the container would not reach the stack's database")
        assert str(environment.get("POSTGRES_PORT")) == "5432", (
            f"{name}: POSTGRES_PORT follows .env ({environment.get('POSTGRES_PORT')!r}) instead of the "
            "postgres service's 5432")
        assert not environment.get("DATABASE_URL"), (
            f"{name}: a DATABASE_URL from .env reaches the container and overrides POSTGRES_HOST: it "
            "would connect to the laptop's database address instead of the postgres service")
        assert environment.get("REDIS_URL") == "redis://redis:6379/0", (
            f"{name}: REDIS_URL is {environment.get('REDIS_URL')!r}, not the redis service: replicas "
            "would not share bids")
    assert str(services["app"]["environment"].get("APP_PORT")) == "8000", (
        "the app's APP_PORT follows .env instead of the image's port 8000: the published port and "
        "the healthcheck would point at nothing")


def test_compose_can_publish_for_several_replicas():
    """APP_PUBLISH=8000 (the container port only) lets every replica get its own host port."""
    services = render_compose(ENV_EXAMPLE.read_text(), {"APP_PUBLISH": "8000"})["services"]
    for port in services["app"].get("ports") or []:
        published = port.get("published") if isinstance(port, dict) else (
            str(port).rsplit(":", 1)[0] if ":" in str(port) else None)
        assert published in (None, "", 0, "0"), (
            f"with APP_PUBLISH=8000 the app still publishes a fixed host port ({published}): "
            "`docker compose up --scale app=3` as documented would fail on the port clash")


# --------------------------------------------------------------------------- .env.example and README

def test_env_example_and_readme_document_every_variable():
    names = config_vars()
    documented = env_example_names(commented=True)
    readme = README.read_text()
    missing_env = [n for n in names if n not in documented]
    assert not missing_env, (
        f".env.example does not mention {missing_env}: an operator copying it would not know these "
        "settings exist")
    missing_readme = [n for n in names if not re.search(rf"\b{re.escape(n)}\b", readme)]
    assert not missing_readme, (
        f"README.md does not mention {missing_readme}: these settings are undocumented")
    unknown = sorted(documented - set(names) - COMPOSE_ONLY_VARIABLES)
    assert not unknown, (
        f".env.example sets {unknown}, which the server does not read: an operator would change "
        "them and see no effect (a typo, or a variable the server dropped)")


def test_env_example_is_safe_for_development():
    values = env_example_values()
    assert values.get("ENV") == "development", (
        ".env.example does not set ENV=development: a copied file would run with another mode's rules")
    assert values.get("DEBUG", "false").lower() in ("false", "0", "no", "off"), (
        ".env.example enables DEBUG: copied into a production-like set-up it would refuse to start")
    assert "change" in values.get("SECRET_KEY", "").lower(), (
        ".env.example's SECRET_KEY is not marked as a placeholder to change: it could end up in "
        "production as is")
    for name in ("DATABASE_URL", "POSTGRESS_PASSWORD"):
        assert name not in values, (
            f".env.example sets {name} uncommented: as an alternative it must stay commented out, or "
            "it silently overrides the documented POSTGRES_* values")
    for name in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"):
        assert values.get(name), (
            f".env.example leaves {name} empty: the compose postgres service cannot be created "
            "without it")
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^\s*[A-Za-z_][A-Za-z0-9_]*=(.*)$", line)
        if match:
            assert not re.search(r"\s#", match.group(1)) and not match.group(1).startswith(("'", '"')), (
                f".env.example line {line!r} has quotes or a trailing comment, which docker-compose "
                "1.29 and Compose v2 read differently: the container would get another value")


def test_readme_explains_docker_compose():
    readme = README.read_text()
    for snippet in ("cp .env.example .env", "docker compose up --build", "--scale app=",
                    "docker compose down", "ws://localhost:8000/ws/bid/1",
                    "http://localhost:8000/readyz"):
        assert snippet in readme, (
            f"README.md lacks `{snippet}`: an operator has no command to copy for that step of the "
            "docker compose set-up")


# --------------------------------------------------------------------------- Dockerfile

def test_dockerfile_installs_the_set_up_scripts_package_list():
    stages = dockerfile_stages()
    assert len(stages) >= 2, (
        "the Dockerfile has fewer than two stages: the compilers and headers would ship in the "
        "runtime image")
    for stage in stages:
        if stage["from"] in {s["name"] for s in stages if s["name"]}:
            continue
        assert re.fullmatch(r"(docker\.io/(library/)?)?debian:12(-slim)?(@sha256:[0-9a-f]+)?", stage["from"]), (
            f"stage FROM {stage['from']} is not Debian 12: the image would not be built and run on "
            "the system the project's packages.txt describes")
    build = stages[0]["instructions"]
    copies = [args for keyword, args in build if keyword == "COPY"]
    runs = [args for keyword, args in build if keyword == "RUN"]
    assert any("packages.txt" in args.split() or "packages.txt" in args for args in copies), (
        "the build stage does not COPY packages.txt: the image's packages could drift from the "
        "set-up script's list")
    install = [args for args in runs if "scripts/install-deps.sh" in args]
    assert install, (
        "the build stage does not run scripts/install-deps.sh: the image would install its own "
        "package list, which drifts from what developers and CI build with")
    groups = re.findall(r"scripts/install-deps\.sh((?:\s+[A-Za-z0-9_-]+)*)", install[0])[0].split()
    if groups:
        selected = install_deps_list(*groups)
        assert "cmake" in selected and "libpqxx-dev" in selected, (
            f"the groups the Dockerfile installs ({groups}) lack cmake or libpqxx-dev: the image "
            "cannot build")
    assert any("scripts/build.sh" in args for args in runs), (
        "the build stage does not build with scripts/build.sh: the image would be compiled "
        "differently from CI")
    assert any(re.search(r"\bctest\b", args) for args in runs), (
        "the build stage does not run the unit tests (ctest): a broken build could ship as an image")


def test_dockerfile_runtime_stage():
    final = dockerfile_stages()[-1]["instructions"]
    users = [args for keyword, args in final if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), (
        "the runtime stage runs as root: a compromise of the server would own the container")
    exposed = [word.split("/")[0] for keyword, args in final if keyword == "EXPOSE" for word in args.split()]
    assert "8000" in exposed, "the image does not EXPOSE 8000: tools that read the image's ports would not find the server"
    healthchecks = [args for keyword, args in final if keyword == "HEALTHCHECK"]
    assert healthchecks and not healthchecks[-1].upper().startswith("NONE"), (
        "the image has no HEALTHCHECK: `docker ps` would never show a hung server as unhealthy")
    assert "healthcheck" in healthchecks[-1] or "/healthz" in healthchecks[-1], (
        "the image's HEALTHCHECK does not use `bidding-server healthcheck` (/healthz)")
    entrypoints = [args for keyword, args in final if keyword == "ENTRYPOINT"]
    assert entrypoints and "bidding-server" in entrypoints[-1], (
        "the image's ENTRYPOINT is not bidding-server: `docker run IMAGE migrate` would not run "
        "the server's commands")


def test_dockerignore_keeps_local_state_out():
    patterns = set()
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and not line.startswith("!"):
            patterns.add(line.strip("/"))
    for needed, loss in (("build", "a stale host build/ (CMake cache with this machine's paths) in the image build"),
                         (".local", "the local Postgres/Redis data sent to the Docker daemon on every build"),
                         (".git", "the whole history in the build context and a cache miss on every commit"),
                         (".env", "local secrets copied into the build context")):
        assert needed in patterns, f".dockerignore does not exclude {needed}/: {loss}"


# --------------------------------------------------------------------------- what the real build taught
# scripts/container-test.sh builds and runs the image (tests/container); these checks keep, without
# Docker, the properties that run depends on.

def final_stage_value(keyword: str) -> str | None:
    values = [args for kw, args in dockerfile_stages()[-1]["instructions"] if kw == keyword]
    return values[-1] if values else None


def exec_form(value: str | None) -> list | None:
    """The JSON array of an exec-form instruction (["a", "b"]); None for the shell form."""
    try:
        words = json.loads(value or "")
    except ValueError:
        return None
    return words if isinstance(words, list) else None


def test_dockerfile_bases_are_the_images_container_test_makes():
    """No image registry is reachable where the image is checked: container-test.sh makes debian:12 and
    debian:12-slim with debootstrap, so the Dockerfile must start from exactly those, and must not
    name a BuildKit frontend (`# syntax=`), which would be pulled from a registry."""
    script = CONTAINER_TEST.read_text()
    made = set(re.findall(r"docker import\b[^\n]*(?:\\\n[^\n]*)*?\s(debian:12(?:-slim)?)\s", script))
    assert made == {"debian:12", "debian:12-slim"}, f"scripts/container-test.sh imports {sorted(made)}"
    stages = dockerfile_stages()
    aliases = {s["name"] for s in stages if s["name"]}
    for stage in stages:
        if stage["from"] not in aliases:
            assert stage["from"] in made, (
                f"the Dockerfile starts FROM {stage['from']}, which scripts/container-test.sh does not make: "
                "the image checks could not build it")
    first = DOCKERFILE.read_text().lstrip().splitlines()[0]
    assert not re.match(r"#\s*syntax\s*=", first, re.IGNORECASE), (
        f"the Dockerfile names a frontend image ({first}): the build would need a registry")


def test_dockerfile_installs_the_dependencies_before_copying_the_source():
    """A source change must reuse the layer that installs the build dependencies (the warm rebuild
    of container-test.sh checks it is CACHED): only the package list and the install script may be
    copied before it."""
    build = dockerfile_stages()[0]["instructions"]
    install = next(i for i, (kw, args) in enumerate(build) if kw == "RUN" and "scripts/install-deps.sh" in args)
    copied_before = [args for kw, args in build[:install] if kw in ("COPY", "ADD")]
    for args in copied_before:
        sources = [w for w in args.split() if not w.startswith("--")][:-1]
        assert set(sources) <= {"packages.txt", "scripts/install-deps.sh"}, (
            f"`COPY {args}` comes before the dependency install: a change to {sources} would install "
            "every package again on the next build")
    assert any(kw == "COPY" and args.split()[:1] == ["."] for kw, args in build[install:]), (
        "the source is copied (`COPY . .`) after the dependency install")


def test_dockerfile_runs_the_server_as_pid_1_with_the_user_the_manifests_name():
    """`docker stop` drains only if SIGTERM reaches the server: the ENTRYPOINT is the exec form of the
    binary itself (no shell in between), checked for real as the container's PID 1. The user is the
    numeric 10001:10001 the Kubernetes manifests' runAsUser/runAsGroup name."""
    entrypoint = final_stage_value("ENTRYPOINT")
    assert exec_form(entrypoint) == ["bidding-server"], (
        f"ENTRYPOINT {entrypoint}: must be the exec form [\"bidding-server\"], or SIGTERM goes to a shell")
    assert exec_form(final_stage_value("CMD")) == ["serve"], "CMD must be the exec form [\"serve\"]"
    assert final_stage_value("STOPSIGNAL") in (None, "SIGTERM"), "docker stop must send SIGTERM (the drain signal)"
    assert final_stage_value("USER") == "10001:10001", (
        f"USER {final_stage_value('USER')}: numeric 10001:10001, as k8s/deployment.yaml's runAsUser and runAsGroup, "
        "so that runAsNonRoot can check it")


def test_compose_runs_the_image_as_the_container_checks_do(rendered):
    """tests/container runs the compose file's migrate and app commands and its app healthcheck in the
    real image: they must be bidding-server subcommands (the ENTRYPOINT comes first) and the
    healthcheck the image's own."""
    services = rendered["services"]
    for name, subcommand in (("migrate", "migrate"), ("app", "serve")):
        words = command_words(services[name].get("command"))
        assert words[:1] == [subcommand], (
            f"the {name} service's command {words} must start with the subcommand {subcommand}: the image's "
            "ENTRYPOINT is bidding-server (a command repeating it would run `bidding-server bidding-server ...`)")
    test = command_words((services["app"].get("healthcheck") or {}).get("test"))
    image_test = final_stage_value("HEALTHCHECK") or ""
    image_cmd = exec_form(image_test[image_test.find("CMD") + 3:].strip())
    assert image_cmd, f"the image's HEALTHCHECK must be an exec-form CMD: {image_test}"
    assert test[:1] == ["CMD"] and test[1:] == image_cmd, (
        f"the app service's healthcheck {test} must run the image's own HEALTHCHECK command {image_cmd} "
        "(exec form: the image has no shell tools such as curl)")


def test_container_test_uses_a_private_daemon_and_host_networking():
    """What makes the real run possible here, and harmless elsewhere: its own dockerd with no bridge
    and no iptables, stopped by PID; every container on the host network."""
    script = CONTAINER_TEST.read_text()
    assert os.access(CONTAINER_TEST, os.X_OK), "scripts/container-test.sh must be executable"
    for flag in ("--bridge=none", "--iptables=false", "--ip-forward=false", "--data-root", "--exec-root",
                 "--pidfile", "--containerd"):
        assert flag in script, f"scripts/container-test.sh must start dockerd with {flag}"
    assert "--network host" in script, "the image build must use the host network (no bridge exists)"
    assert re.search(r"kill\s+-TERM\s+\"\$pid\"", script), "the daemons are stopped by their PID"
    assert not re.search(r"\b(pkill|killall)\b", script), "never stop daemons by name"
    tests = (ROOT / "tests" / "container" / "containers.py").read_text()
    assert tests.count('"--network", "host"') >= 2, "every container of tests/container runs with --network host"
    test_sh = (ROOT / "scripts" / "test.sh").read_text()
    assert "scripts/container-test.sh" in test_sh, "scripts/test.sh (CI) runs scripts/container-test.sh"


# --------------------------------------------------------------------------- packages.txt groups

def test_install_deps_groups():
    everything = install_deps_list()
    build = install_deps_list("build")
    for package in ("docker-compose", "python3-yaml", "debootstrap"):
        assert package in everything, (
            f"packages.txt does not list {package}: CI could not run the container checks")
    assert build and set(build) < set(everything), (
        "scripts/install-deps.sh build does not select a proper part of packages.txt: the image "
        "would install everything or nothing")
    for package in ("postgresql-15", "redis-server", "python3-pytest"):
        assert package not in build, (
            f"the [build] group holds {package}: the image's build stage would install services "
            "and test tools it never uses")
    container = install_deps_list("container")
    assert container and container[0] in ("docker.io", "docker-ce"), (
        f"packages.txt [container] must hold a Docker engine (docker.io, or an installed docker-ce): {container}")
    assert "debootstrap" in container, "packages.txt [container] must hold debootstrap (the base images)"
    result = subprocess.run([str(INSTALL_DEPS), "--list", "no-such-group"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2, (
        "scripts/install-deps.sh accepts an unknown group: a typo in the Dockerfile would install "
        "nothing and fail much later")
