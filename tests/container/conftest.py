"""Fixtures of the image checks: the e2e harness's Postgres and Redis (on 127.0.0.1, free ports)
and a pool of containers of the image (containers.py), removed at the end of each module."""
from __future__ import annotations

import os
import secrets

import pytest

from containers import DRAIN_TIMEOUT, IMAGE, Docker, docker, harness


@pytest.fixture(scope="session", autouse=True)
def engine():
    """The Docker engine and the image: scripts/container-test.sh provides both."""
    if not IMAGE or not os.environ.get("DOCKER_HOST"):
        pytest.fail("tests/container needs the engine and image that scripts/container-test.sh starts and "
                    "builds (BIDDING_IMAGE and DOCKER_HOST are not set): run scripts/container-test.sh",
                    pytrace=False)
    docker("image", "inspect", IMAGE, timeout=30)
    yield


@pytest.fixture(scope="session")
def postgres():
    pg = harness.Postgres().start()
    yield pg
    pg.stop()


@pytest.fixture(scope="session")
def redis():
    instance = harness.Redis().start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def database(postgres):
    """An empty database: the image's own `migrate --seed` creates the tables and the demo auctions."""
    return postgres.create_database()


@pytest.fixture(scope="module")
def pods(database, redis, tmp_path_factory):
    """Starts containers configured for the test's Postgres and Redis, as production pods are:
    ENV=production with a SECRET_KEY made for this run."""
    env = {
        "ENV": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": database.url,
        "REDIS_URL": redis.url,
        "DRAIN_TIMEOUT": str(DRAIN_TIMEOUT),
        "LOG_LEVEL": "info",
    }
    env_dir = tmp_path_factory.mktemp("container-env")
    pool = Docker(env_dir, env)
    yield pool
    pool.remove_all()
