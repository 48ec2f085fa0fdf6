"""Shared fixtures: real PostgreSQL and real Chromium when the machine has them.

Tests that need a service skip with a visible reason when it is missing. CI sets
BRIEFCAST_REQUIRE_SERVICES=1, which turns those skips into failures, so a green
CI run means they really ran.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

PG_URL = os.environ.get("BRIEFCAST_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
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


@pytest.fixture(scope="session")
def chromium_path():
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        _missing(f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    return CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")


@pytest.fixture(scope="session")
def shared_prefect_api(tmp_path_factory):
    """One Prefect API for every CLI subprocess in the session, instead of one each.

    A `briefcast run` without PREFECT_API_URL starts its own temporary server (10-40 s on
    a loaded machine); with this one it only connects. support.cli_env() hands the URL
    to the subprocess. Webserver only (no services, no UI): CLI runs execute their flow
    in-process and only record it here.
    """
    import httpx

    home = tmp_path_factory.mktemp("shared-prefect")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_API_BLOCKS_REGISTER_ON_START="false",
    )
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-services", "--no-ui"]
    with (home / "server.log").open("wb") as log:
        server = subprocess.Popen(
            command,
            env=env,
            cwd=home,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while server.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            tail = (home / "server.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"the shared Prefect server did not start:\n{tail}")
        os.environ[SHARED_PREFECT_API] = url
        yield url
    finally:
        os.environ.pop(SHARED_PREFECT_API, None)
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)


def pytest_collection_modifyitems(items):
    """Mark by what a test uses, so no test file needs to remember: Chromium -> browser,
    a real `prefect server start` -> server (`make test-fast` deselects both)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "chromium_path" in fixtures:
            item.add_marker(pytest.mark.browser)
        if "prefect_server" in fixtures:
            item.add_marker(pytest.mark.server)
