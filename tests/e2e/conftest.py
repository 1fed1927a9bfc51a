"""Fixtures of the end-to-end suite: one Postgres and one Redis for the whole session, a database
per test module (or per test), servers started on demand and stopped at the end of their scope.

When a test fails, the tail of every running server's log is attached to its report and the
full logs are copied to test-artifacts/e2e/.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

import harness


@pytest.fixture(scope="session")
def workdir():
    """A temporary folder for server logs and working directories, removed at the end."""
    path = Path(tempfile.mkdtemp(prefix="bidding-e2e-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


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


def _keep_log(request, path, label: str) -> None:
    """Copies a dedicated service's log to test-artifacts/e2e/ when the test failed."""
    if getattr(request.node, "e2e_failed", False) and path is not None and Path(path).exists():
        try:
            harness.ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, harness.ARTIFACTS / f"{request.node.name}-{label}.log")
        except OSError:
            pass


@pytest.fixture
def dedicated_redis(request):
    """A Redis of this test alone, which it may kill and restart (same port) without disturbing others."""
    instance = harness.Redis().start()
    yield instance
    _keep_log(request, instance.dir and instance.dir / "redis.log", "redis")
    instance.stop()


@pytest.fixture
def dedicated_postgres(request):
    """A Postgres cluster of this test alone, which it may stop or crash and restart (same port);
    durable, so a crash loses no committed transaction."""
    pg = harness.Postgres(durable=True).start()
    yield pg
    _keep_log(request, pg.dir and pg.log_path, "postgres")
    pg.stop()


@pytest.fixture
def fresh_db(postgres):
    """An empty database of its own (no schema): for migrate/seed tests."""
    return postgres.create_database()


@pytest.fixture(scope="module")
def seeded_db(postgres):
    """A database of this test module, migrated and seeded (auctions 1, 2 open and 3 closed)."""
    return harness.migrate_and_seed(postgres.create_database())


def _save_sanitizer_reports(reports, label: str) -> None:
    try:
        harness.ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for path, _ in reports:
            shutil.copyfile(path, harness.ARTIFACTS / f"{label}-{path.name}")
    except OSError:
        pass


def _finish(pool: harness.ServerPool) -> None:
    problems = pool.stop_all()
    reports = harness.new_sanitizer_reports()
    if reports:
        _save_sanitizer_reports(reports, "sanitizer")
        problems.append(harness.describe_sanitizer_reports(reports))
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture(autouse=True)
def no_sanitizer_report(request):
    """In a sanitizer run (scripts/sanitize.sh), a report written by any process of the binary
    since the last check (so: during the test, a module server's too) fails it, whatever the
    process's exit code. Set up first, so torn down last: after the test's servers have stopped
    (LeakSanitizer reports at exit)."""
    yield
    reports = harness.new_sanitizer_reports()
    if reports:
        _save_sanitizer_reports(reports, request.node.name)
        pytest.fail(harness.describe_sanitizer_reports(reports), pytrace=False)


@pytest.fixture
def start_server(workdir, request):
    """start_server(db, env={...}, use_redis=False) -> harness.Server; stopped after the test."""
    pool = harness.ServerPool(workdir / "servers", redis=None)
    if "redis" in request.fixturenames:
        pool.redis = request.getfixturevalue("redis")
    yield pool
    _finish(pool)


@pytest.fixture(scope="module")
def module_server(workdir, seeded_db):
    """One server for the whole test module, on the module's seeded database."""
    pool = harness.ServerPool(workdir / "servers", default_db=seeded_db)
    server = pool(name="module")
    yield server
    _finish(pool)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        item.e2e_failed = True  # read by the dedicated fixtures' teardown
    if report.failed and harness.LIVE_SERVERS:
        for server in list(harness.LIVE_SERVERS):
            saved = server.save_artifact(item.nodeid)
            report.sections.append((
                f"bidding-server log ({server.name}, port {server.port}), last lines"
                + (f"; full log: {saved}" if saved else ""),
                server.log_tail(60)))


def pytest_sessionfinish(session, exitstatus):
    harness.cleanup()
    reports = harness.new_sanitizer_reports()
    if reports:  # written after every test's check (a module's server at its end, say)
        _save_sanitizer_reports(reports, "session")
        print("\n" + harness.describe_sanitizer_reports(reports))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
