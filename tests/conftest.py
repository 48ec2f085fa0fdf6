"""Shared fixtures: real PostgreSQL and real Chromium when the machine has them.

Tests that need a service skip with a visible reason when it is missing. CI sets
BRIEFCAST_REQUIRE_SERVICES=1, which turns those skips into failures, so a green
CI run means they really ran.
"""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

# Registered here, once for the whole session: a module importing a session fixture gets
# its own instance (a second Prefect server), so modules import only helpers from there.
from flow_fixtures import (  # noqa: F401
    newsroom_fixture,
    prefect_harness_fixture,
    prefect_server_fixture,
    served_fixture,
)

PG_URL = os.environ.get("BRIEFCAST_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BRIEFCAST_TEST_REDIS", "redis://127.0.0.1:6379/0")
CHROMIUM = os.environ.get("BRIEFCAST_CHROMIUM", "/usr/bin/chromium")
REQUIRE = os.environ.get("BRIEFCAST_REQUIRE_SERVICES") == "1"
SHARED_PREFECT_API = "BRIEFCAST_TEST_PREFECT_API_URL"  # set while shared_prefect_api runs


def _missing(reason: str):
    if REQUIRE:
        pytest.fail(f"{reason} (BRIEFCAST_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture
def postgres_url():
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    dsn = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        admin = psycopg.connect(dsn, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        _missing(f"PostgreSQL not reachable at {dsn}: {exc}".splitlines()[0])
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in dsn else "?"
    url = f"{dsn}{sep}options=-csearch_path%3D{schema}"
    yield url
    from briefcast.db import get_engine

    get_engine(url).dispose()
    admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    admin.close()


@pytest.fixture
def redis_url():
    """A Redis URL that answers; each test keeps its keys apart with its own key prefix."""
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        _missing(f"Redis not reachable at {REDIS_URL}: {exc}".splitlines()[0])
    return REDIS_URL


@pytest.fixture(scope="session")
def chromium_path():
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        _missing(f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    return CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")


@pytest.fixture(scope="session")
def shared_prefect_api(prefect_harness):
    """The session's Prefect API for every CLI subprocess, instead of one server each.

    A `briefcast run` without PREFECT_API_URL starts its own temporary server (10-40 s on
    a loaded machine); given this one it only connects. It is the in-process flow tests'
    harness server (a subprocess on 127.0.0.1), so a session starts one server, not two.
    support.cli_env() hands the URL to the subprocess.
    """
    from prefect.settings import PREFECT_API_URL

    os.environ[SHARED_PREFECT_API] = PREFECT_API_URL.value()
    yield PREFECT_API_URL.value()
    os.environ.pop(SHARED_PREFECT_API, None)


def pytest_collection_modifyitems(items):
    """Mark by what a test uses, so no test file needs to remember: Chromium -> browser,
    a real `prefect server start` -> server (`make test-fast` deselects both)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "chromium_path" in fixtures:
            item.add_marker(pytest.mark.browser)
        if "prefect_server" in fixtures:
            item.add_marker(pytest.mark.server)
