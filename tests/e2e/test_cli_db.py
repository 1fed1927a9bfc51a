"""The command line against a real Postgres: migrate, seed, bid create/close/list, configuration
errors, --version/--help, .env, and adopting the tables of the existing Django application."""
from __future__ import annotations

import subprocess

import pytest

import harness
from harness import run_cli, run_cli_ok

SEEDED = [
    (1, "Vintage Camera", "100.00", "open"),
    (2, "Antique Vase", "200.00", "open"),
    (3, "Rare Book", "150.00", "closed"),
    (4, "Pocket Watch", "50.00", "open"),  # the timed demo, restarted by every seed
]

# (column, data_type, character_maximum_length, numeric_precision, numeric_scale, is_identity)
EXPECTED_COLUMNS = {
    "bids_bid": {
        ("id", "bigint", None, 64, 0, "YES"),
        ("name", "character varying", 255, None, None, "NO"),
        ("initial_price", "numeric", None, 10, 2, "NO"),
        ("created_at", "timestamp with time zone", None, None, None, "NO"),
        ("status", "character varying", 50, None, None, "NO"),
    },
    "bids_bidhistory": {
        ("id", "bigint", None, 64, 0, "YES"),
        ("bid_id", "bigint", None, 64, 0, "NO"),
        ("bidder_name", "character varying", 255, None, None, "NO"),
        ("price", "numeric", None, 10, 2, "NO"),
        ("added_at", "timestamp with time zone", None, None, None, "NO"),
        ("name", "character varying", 255, None, None, "NO"),
    },
}


def columns(db: harness.Database, table: str) -> set[tuple]:
    rows = db.query(
        """SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale, is_identity
             FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s""", (table,))
    return {tuple(r) for r in rows}


def assert_schema(db: harness.Database) -> None:
    """The Django-compatible schema: column types, defaults, identity, the cascading foreign key
    and the (bid_id, id) index that the history query uses."""
    for table, expected in EXPECTED_COLUMNS.items():
        actual = columns(db, table)
        missing = expected - actual
        assert not missing, f"table {table} lacks the Django-compatible columns {sorted(missing, key=str)}; has {sorted(actual, key=str)}"

    # Defaults, checked by behaviour inside a transaction that is rolled back.
    conn = db.connect()
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO bids_bid (name) VALUES ('schema probe') "
                        "RETURNING id, initial_price::text, status, created_at IS NOT NULL")
            bid_id, initial_price, status, has_created_at = cur.fetchone()
            assert (initial_price, status, has_created_at) == ("100.00", "open", True), (
                "bids_bid defaults must be initial_price 100.00, status 'open', created_at now()")
            cur.execute("INSERT INTO bids_bidhistory (bid_id, bidder_name, price) VALUES (%s, 'probe', 101) "
                        "RETURNING name, added_at IS NOT NULL", (bid_id,))
            assert cur.fetchone() == ("", True), "bids_bidhistory defaults must be name '' and added_at now()"
            cur.execute("DELETE FROM bids_bid WHERE id = %s", (bid_id,))
            cur.execute("SELECT count(*) FROM bids_bidhistory WHERE bid_id = %s", (bid_id,))
            assert cur.fetchone() == (0,), "deleting an auction must cascade to its bid history"
    finally:
        conn.rollback()
        conn.close()

    fks = db.query("""SELECT confrelid::regclass::text, confdeltype FROM pg_constraint
                       WHERE conrelid = 'bids_bidhistory'::regclass AND contype = 'f'""")
    assert ("bids_bid", "c") in fks, f"bids_bidhistory.bid_id must reference bids_bid ON DELETE CASCADE, found {fks}"

    indexes = db.query("""SELECT array_agg(a.attname::text ORDER BY k.ord)
                            FROM pg_index i
                            CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                           WHERE i.indrelid = 'bids_bidhistory'::regclass
                           GROUP BY i.indexrelid""")
    assert any(cols[:2] == ["bid_id", "id"] for (cols,) in indexes), (
        f"bids_bidhistory needs an index on (bid_id, id) for the newest-first history; indexes: {indexes}")


def schema_snapshot(db: harness.Database) -> dict:
    """Everything a migration could change: tables, columns, constraints, indexes, row counts."""
    tables = [t for (t,) in db.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
    return {
        "columns": db.query("""SELECT table_name, column_name, data_type, column_default, is_nullable, is_identity
                                 FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"""),
        "constraints": db.query("""SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
                                     FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"""),
        "indexes": db.query("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"),
        "rows": {t: db.query(f'SELECT count(*) FROM "{t}"')[0][0] for t in tables},
    }


def bids(db: harness.Database) -> list[tuple]:
    return db.query("SELECT id, name, initial_price::text, status FROM bids_bid ORDER BY id")


# --------------------------------------------------------------------------- migrate

def test_migrate_creates_the_schema_on_an_empty_database(fresh_db):
    run_cli_ok("migrate", database_url=fresh_db.url)
    assert_schema(fresh_db)


def test_second_migrate_is_a_no_op(fresh_db):
    run_cli_ok("migrate", database_url=fresh_db.url)
    before = schema_snapshot(fresh_db)
    run_cli_ok("migrate", database_url=fresh_db.url)
    assert schema_snapshot(fresh_db) == before, "running migrate a second time must not change the database"


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_migrates_on_a_fresh_database_both_succeed(postgres, round_):
    db = postgres.create_database()
    env = harness.cli_env(db.url)
    procs = [subprocess.Popen([str(harness.require_binary()), "migrate"], env=env, cwd=str(harness.neutral_dir()),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
             for _ in range(2)]
    outputs = [p.communicate(timeout=60) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, (
            f"two pods migrating at once: one migrate failed with exit code {proc.returncode}\n"
            f"stdout:\n{out}\nstderr:\n{err}")
    assert_schema(db)


# --------------------------------------------------------------------------- seed and bid create

def test_seed_twice_inserts_exactly_the_demo_auctions(fresh_db):
    run_cli_ok("migrate", database_url=fresh_db.url)
    run_cli_ok("seed", database_url=fresh_db.url)
    assert bids(fresh_db) == SEEDED, "seed must insert Vintage Camera, Antique Vase, the closed Rare Book and Pocket Watch"
    run_cli_ok("seed", database_url=fresh_db.url)
    assert bids(fresh_db) == SEEDED, "seeding a second time must not add or change auctions"
    assert fresh_db.query("SELECT count(*) FROM bids_bidhistory") == [(0,)], "seed must not invent bids"


def test_bid_create_after_seed_gets_a_new_id_and_prints_one_json_line(fresh_db):
    harness.migrate_and_seed(fresh_db)
    lamp = harness.create_auction(fresh_db, "Brass Lamp")
    assert lamp["id"] >= 5, f"bid create after seed must not reuse the seeded ids 1-4, got {lamp}"
    assert lamp == {"id": lamp["id"], "name": "Brass Lamp", "status": "open", "initial_price": "100.00",
                    "current_price": "100.00", "last_seq": 0, "ends_at": None, "extend_window": None,
                    "extend_by": None, "min_increment": "0.01", "min_price": "100.01"}, (
        f"bid create printed an unexpected auction: {lamp}")
    clock = harness.create_auction(fresh_db, "Cuckoo Clock", initial_price="12.5")
    assert clock["id"] > lamp["id"], f"each bid create must get a new id: {lamp['id']} then {clock['id']}"
    assert clock["initial_price"] == "12.50" and clock["current_price"] == "12.50", (
        f"--initial-price 12.5 must be stored and shown as 12.50, got {clock}")
    stored = fresh_db.query("SELECT id, name, initial_price::text, status FROM bids_bid WHERE id >= 5 ORDER BY id")
    assert stored == [(lamp["id"], "Brass Lamp", "100.00", "open"), (clock["id"], "Cuckoo Clock", "12.50", "open")]


def test_bid_close_closes_a_known_auction_and_fails_for_an_unknown_one(fresh_db):
    harness.migrate_and_seed(fresh_db)
    run_cli_ok("bid", "close", "2", database_url=fresh_db.url)
    assert fresh_db.query("SELECT status FROM bids_bid WHERE id = 2") == [("closed",)], (
        "bid close 2 must mark the auction closed")
    result = run_cli("bid", "close", "987654", database_url=fresh_db.url)
    assert result.returncode == 1, (
        f"bid close of an unknown id must exit 1, got {result.returncode}\n{result.stdout}{result.stderr}")


def test_bid_list_shows_the_auctions(fresh_db):
    harness.migrate_and_seed(fresh_db)
    result = run_cli_ok("bid", "list", database_url=fresh_db.url)
    for name in ("Vintage Camera", "Antique Vase", "Rare Book"):
        assert name in result.stdout, f"bid list must show {name!r}; printed:\n{result.stdout}"
    assert "closed" in result.stdout, f"bid list must show that Rare Book is closed; printed:\n{result.stdout}"


# --------------------------------------------------------------------------- adopting Django's tables

def test_migrate_adopts_existing_django_tables_and_keeps_their_data(fresh_db, start_server):
    fresh_db.execute(harness.DJANGO_SCHEMA)
    (bid_id,) = fresh_db.query("INSERT INTO bids_bid (name, initial_price) VALUES ('Old Lamp', 50.00) RETURNING id")[0]
    (seq,) = fresh_db.query(
        "INSERT INTO bids_bidhistory (bid_id, bidder_name, price, added_at) "
        "VALUES (%s, 'zed', 75.00, '2025-01-02 03:04:05.678+00') RETURNING id", (bid_id,))[0]

    run_cli_ok("migrate", database_url=fresh_db.url)
    assert fresh_db.query("SELECT id, name, initial_price::text, status FROM bids_bid") == [
        (bid_id, "Old Lamp", "50.00", "open")], "migrate must keep the existing auctions untouched"
    assert harness.history(fresh_db, bid_id) == [(seq, "zed", "75.00")], "migrate must keep the existing bid history"
    assert_schema(fresh_db)

    server = start_server(fresh_db)

    async def scenario():
        async with harness.ws_connect(server.ws_url(bid_id)) as ws:
            state = await harness.initial_state(ws)
            assert state["bid"] == {"id": bid_id, "name": "Old Lamp", "status": "open", "initial_price": "50.00",
                                    "current_price": "75.00", "last_seq": seq, "ends_at": None, "extend_window": None,
                                    "extend_by": None, "min_increment": "0.01",
                                    "min_price": "75.01"}, (
                f"an auction from the Django tables must show its stored state, got {state['bid']}")
            assert state["data"] == [{"seq": seq, "bidder": "zed", "price": "75.00",
                                      "added_at": "2025-01-02T03:04:05.678Z"}], (
                f"the Django bid history must be served as is, got {state['data']}")
            new_bid, accepted = await harness.place_bid(ws, "amy", "80", ref="adopt")
            assert accepted["price"] == "80.00" and accepted["seq"] > seq, f"a new bid must be accepted: {accepted}"

    harness.run_async(scenario(), timeout=30)
    assert [h[1:] for h in harness.history(fresh_db, bid_id)] == [("zed", "75.00"), ("amy", "80.00")]
    created = harness.create_auction(fresh_db, "Newer Lamp")
    assert created["id"] > bid_id, f"bid create must not collide with the adopted auctions: {created}"


# --------------------------------------------------------------------------- configuration

SECRET = "e2e-secret-value-7f3a9c-0123456789abcdef-0123456789abcdef"  # long enough for production


@pytest.mark.parametrize("env, variable", [
    ({"APP_PORT": "abc"}, "APP_PORT"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
    ({"HEARTBEAT_INTERVAL": "abc"}, "HEARTBEAT_INTERVAL"),
    ({"IDLE_TIMEOUT": "abc"}, "IDLE_TIMEOUT"),
    ({"HISTORY_LIMIT": "abc"}, "HISTORY_LIMIT"),
    ({"MAX_MESSAGE_BYTES": "abc"}, "MAX_MESSAGE_BYTES"),
    ({"ENV": "production", "SECRET_KEY": None}, "SECRET_KEY"),
    ({"ENV": "production", "DEBUG": "true"}, "DEBUG"),
], ids=["APP_PORT=abc", "LOG_LEVEL=loud", "HEARTBEAT_INTERVAL=abc", "IDLE_TIMEOUT=abc", "HISTORY_LIMIT=abc",
        "MAX_MESSAGE_BYTES=abc", "production-without-SECRET_KEY", "production-with-DEBUG"])
def test_bad_configuration_exits_2_naming_the_variable(fresh_db, env, variable):
    full_env = {"SECRET_KEY": SECRET, "APP_PORT": str(harness.free_port()), **env}
    try:
        result = run_cli("serve", database_url=fresh_db.url, env=full_env, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the server started with a bad configuration ({env}) instead of exiting with code 2")
    output = result.stdout + result.stderr
    assert result.returncode == 2, f"a bad {variable} must make the server exit with code 2, got {result.returncode}:\n{output}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"a bad {variable} must be reported in exactly one stderr line, got:\n{result.stderr}"
    assert variable in lines[0], f"the error line must name {variable}: {lines[0]!r}"
    assert SECRET not in output, "the SECRET_KEY value must never be printed"
    assert fresh_db.postgres.password not in output, "the database password must never be printed"


def test_version_prints_app_name_and_version():
    result = run_cli_ok("--version", env={"APP_NAME": "auction-e2e", "APP_VERSION": "7.8.9"})
    assert result.stdout.strip() == "auction-e2e 7.8.9", f"--version must print 'APP_NAME APP_VERSION', got {result.stdout!r}"


def test_help_lists_the_commands():
    result = run_cli_ok("--help")
    for command in ("serve", "migrate", "seed", "bid"):
        assert command in result.stdout, f"--help must mention the {command} command; printed:\n{result.stdout}"


def test_dotenv_in_working_directory_is_read_and_real_variables_win(tmp_path):
    (tmp_path / ".env").write_text("# local settings\nAPP_NAME=from-dotenv\nexport APP_VERSION='1.2.3'\n")
    result = run_cli_ok("--version", cwd=tmp_path)
    assert result.stdout.strip() == "from-dotenv 1.2.3", f".env in the working directory must be read: {result.stdout!r}"
    result = run_cli_ok("--version", cwd=tmp_path, env={"APP_NAME": "from-env"})
    assert result.stdout.strip() == "from-env 1.2.3", f"a real environment variable must win over .env: {result.stdout!r}"


def test_bad_value_in_dotenv_exits_2(tmp_path, fresh_db):
    (tmp_path / ".env").write_text("APP_PORT=abc\n")
    try:
        result = run_cli("serve", database_url=fresh_db.url, cwd=tmp_path, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("the server started with APP_PORT=abc from .env instead of exiting with code 2")
    assert result.returncode == 2 and "APP_PORT" in result.stderr, (
        f"a bad APP_PORT in .env must exit 2 naming it, got {result.returncode}:\n{result.stderr}")
