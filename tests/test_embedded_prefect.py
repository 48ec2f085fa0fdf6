"""Prefect's temporary server, started by ``briefcast run`` as it starts: it answers, it
is gone at exit, it survives a failed start, and it stays out of the way of a server
the operator configured."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from briefcast import embedded_prefect
from briefcast.embedded_prefect import EmbeddedServer, ServerDidNotStart


@pytest.fixture
def prefect_home(tmp_path, monkeypatch):
    home = tmp_path / "prefect"
    home.mkdir()
    monkeypatch.setenv("PREFECT_HOME", str(home))
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    monkeypatch.setenv("PREFECT_API_BLOCKS_REGISTER_ON_START", "false")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_PROFILE", raising=False)
    monkeypatch.delenv("PREFECT_PROFILES_PATH", raising=False)
    return home


def _refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_the_server_answers_and_is_gone_when_the_process_exits(prefect_home):
    script = textwrap.dedent(
        """
        from briefcast import embedded_prefect
        server = embedded_prefect.start()
        server.ready(timeout=90)
        import os
        from prefect.client.orchestration import get_client
        with get_client(sync_client=True) as client:
            assert client.api_url.port == server.port
            client.api_healthcheck()
        print(server.port, os.environ["PREFECT_API_URL"])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    port, url = done.stdout.split()
    assert url == f"http://127.0.0.1:{port}/api"
    assert _refused(int(port))  # stopped at exit: no server left behind


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"  # a zombie has ended


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
def test_a_killed_run_leaves_no_server_behind(prefect_home):
    script = textwrap.dedent(
        """
        import sys
        from briefcast import embedded_prefect
        server = embedded_prefect.start()
        server.ready(timeout=90)
        print(server.port, server.process.pid, flush=True)
        sys.stdin.readline()  # until the test kills us
        """
    )
    run = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        port, pid = map(int, run.stdout.readline().split())
        assert not _refused(port)
        run.kill()  # SIGKILL: no exit handler runs
        run.wait(timeout=30)
        deadline = time.monotonic() + 60
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(pid), "the temporary server outlived the killed run"
        assert _refused(port)
    finally:
        run.kill()
        run.wait()


def test_briefcast_run_starts_the_server_in_its_data_folder_before_importing_the_cli(tmp_path):
    secret_config = tmp_path / "secret.toml"
    secret_config.write_text(
        Path("config/briefcast.toml").read_text(encoding="utf-8")
        + '\n[channels.sendgrid]\napi_key = { prefect_secret = "sendgrid" }\n'
    )
    script = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        from briefcast import embedded_prefect

        embedded_prefect.start_for_command(["subscribers", "list"])
        embedded_prefect.start_for_command(["run", "--help"])
        embedded_prefect.start_for_command(["run", "--config", {str(secret_config)!r}])
        embedded_prefect.start_for_command(["run", "-c{secret_config}"])
        embedded_prefect.start_for_command(["run", "--config={secret_config}"])
        assert "PREFECT_API_URL" not in os.environ, "started for a command that is not a run"

        embedded_prefect.start_for_command(["run", "--date", "2026-11-20"])
        assert "briefcast.cli" not in sys.modules and "prefect" not in sys.modules
        server = embedded_prefect.start_in(Path("elsewhere"))  # what the CLI then calls
        assert os.environ["PREFECT_API_URL"] == server.api_url
        server.ready(timeout=90)
        print(os.environ["PREFECT_HOME"])
        """
    )
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(BRIEFCAST_DATA=str(data), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(data / "prefect")
    assert (data / "prefect").is_dir()


def test_a_failed_start_is_tried_again_until_it_answers_or_time_is_up(prefect_home):
    with socket.socket() as taken:  # the port is busy: uvicorn's start-up fails (exit 3)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = EmbeddedServer(taken.getsockname()[1])
        assert server.process.wait(timeout=120) == embedded_prefect.STARTUP_FAILURE
        with pytest.raises(ServerDidNotStart, match="Prefect.s temporary server"):
            server.ready(timeout=1)
    try:
        server.ready(timeout=120)  # the port is free again: the next start answers
        assert not _refused(server.port)
    finally:
        server.stop()
    assert _refused(server.port)


def test_a_profile_that_names_a_server_or_turns_the_temporary_one_off_is_obeyed(
    prefect_home, monkeypatch
):
    monkeypatch.delitem(
        sys.modules, "prefect", raising=False
    )  # as in `briefcast run`, before the import
    assert embedded_prefect._ours_to_start()
    (prefect_home / "profiles.toml").write_text(
        'active = "ops"\n\n[profiles.ops]\nPREFECT_API_URL = "http://prefect.internal:4200/api"\n'
        "\n[profiles.local]\n\n[profiles.strict]\nPREFECT_SERVER_EPHEMERAL_ENABLED = false\n"
    )
    assert not embedded_prefect._ours_to_start()
    monkeypatch.setenv("PREFECT_PROFILE", "local")
    assert embedded_prefect._ours_to_start()
    monkeypatch.setenv("PREFECT_PROFILE", "strict")
    assert not embedded_prefect._ours_to_start()


def test_nothing_is_started_where_prefect_is_told_where_its_api_is(prefect_home):
    base = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    script = textwrap.dedent(
        """
        import os, sys
        from briefcast import embedded_prefect
        print(embedded_prefect.start() is None, os.environ.get("PREFECT_API_URL", ""))
        """
    )
    cases = [
        ({"PREFECT_API_URL": "http://127.0.0.1:9/api"}, "True http://127.0.0.1:9/api"),
        ({"PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false"}, "True"),
        ({"PREFECT_SERVER_EPHEMERAL_ENABLED": "0"}, "True"),
    ]
    for env, expected in cases:
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            env={**base, **env},
        )
        assert done.stdout.strip() == expected, done.stderr
