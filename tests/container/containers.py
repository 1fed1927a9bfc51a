"""Containers of the image under test, run by the Docker engine that scripts/container-test.sh
started (DOCKER_HOST), with the docker client it names (DOCKER).

Every container runs with `--network host`, so it reaches the test's Postgres and Redis on
127.0.0.1 and listens on a free port of the machine. Each container's log is saved to
test-artifacts/container/ when it is removed.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
import harness  # noqa: E402  (tests/e2e/harness.py: Postgres, Redis, WebSocket clients)

IMAGE = os.environ.get("BIDDING_IMAGE", "")
DOCKER = os.environ.get("DOCKER") or shutil.which("docker") or "docker"
ARTIFACTS = harness.ROOT / "test-artifacts" / "container"
# Short enough to test, long enough for a drain with clients: the pods get it explicitly.
DRAIN_TIMEOUT = 10


def docker(*args: str, timeout: float = 120, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    """Runs the docker client against the test's engine (DOCKER_HOST)."""
    result = subprocess.run([DOCKER, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                            input=input, stdin=None if input is not None else subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise AssertionError(f"`docker {' '.join(map(str, args))}` failed ({result.returncode}):\n"
                             f"{result.stdout}{result.stderr}")
    return result


def inspect(name: str, template: str) -> str:
    return docker("inspect", "-f", template, name).stdout.strip()


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int | None, str]:
    """(status, body) of GET http://127.0.0.1:port/path; (None, error) when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except (OSError, urllib.error.URLError) as error:
        return None, str(error)


class Container:
    """One container of the image, started detached with `--network host`."""

    def __init__(self, name: str, port: int | None):
        self.name = name
        self.port = port
        self.started = time.monotonic()

    def running(self) -> bool:
        return inspect(self.name, "{{.State.Running}}") == "true"

    def logs(self) -> str:
        result = docker("logs", self.name, check=False, timeout=30)
        return result.stdout + result.stderr

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.logs().splitlines()[-lines:])

    def exit_code(self) -> int:
        return int(inspect(self.name, "{{.State.ExitCode}}"))

    def ws_url(self, bid_id) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/bid/{bid_id}"

    def wait_ready(self, timeout: float = 60) -> dict:
        """Polls /readyz until it answers 200; fails at once, with the log, if the container exits."""
        deadline = time.monotonic() + timeout
        last = (None, "")
        while time.monotonic() < deadline:
            if not self.running():
                raise AssertionError(f"container {self.name} exited with code {self.exit_code()} before /readyz "
                                     f"answered 200; its log:\n{self.log_tail()}")
            last = http_get(self.port, "/readyz")
            if last[0] == 200:
                return json.loads(last[1])
            time.sleep(0.1)
        raise AssertionError(f"container {self.name}: /readyz did not answer 200 within {timeout} s "
                             f"(last: {last}); its log:\n{self.log_tail()}")

    def remove(self) -> None:
        try:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / f"{self.name}.log").write_text(self.logs())
        except (OSError, subprocess.SubprocessError):
            pass
        docker("rm", "-f", self.name, check=False, timeout=60)


class Docker:
    """Starts containers of the image for one test module and removes them at its end."""

    def __init__(self, env_dir: Path, base_env: dict[str, str]):
        self.env_dir = env_dir
        self.base_env = base_env
        self.containers: list[Container] = []

    def env_file(self, env: dict[str, str]) -> Path:
        """The variables in a file of mode 0600 (`--env-file`): no password on a command line."""
        handle, path = tempfile.mkstemp(prefix="env-", dir=self.env_dir)
        with os.fdopen(handle, "w") as out:
            for key, value in {**self.base_env, **env}.items():
                assert "\n" not in value
                out.write(f"{key}={value}\n")
        return Path(path)

    def run(self, *args: str, env: dict[str, str] | None = None, options: tuple[str, ...] = (),
            timeout: float = 120) -> subprocess.CompletedProcess:
        """`docker run --rm` to completion (a one-shot command such as migrate)."""
        return docker("run", "--rm", "--network", "host", "--env-file", self.env_file(env or {}),
                      *options, IMAGE, *args, timeout=timeout, check=False)

    def start(self, name: str, *args: str, env: dict[str, str] | None = None,
              options: tuple[str, ...] = ()) -> Container:
        """`docker run -d` of the image as a pod listening on a free port (APP_PORT)."""
        port = harness.free_port()
        container = Container(f"bidding-test-{name}-{secrets.token_hex(3)}", port)
        docker("run", "-d", "--name", container.name, "--network", "host",
               "--env-file", self.env_file({"APP_PORT": str(port), **(env or {})}), *options, IMAGE, *args)
        self.containers.append(container)
        return container

    def remove_all(self) -> None:
        for container in self.containers:
            container.remove()
        self.containers.clear()


