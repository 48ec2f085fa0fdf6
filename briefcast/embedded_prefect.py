"""Prefect's temporary API server, started as ``briefcast run`` starts.

With no ``PREFECT_API_URL``, Prefect starts a temporary server (uvicorn in a subprocess,
its database in ``PREFECT_HOME``) the first time a flow needs its API: it imports its
whole server package into this process to do that (1.5 s of one core) and then waits
for the server to answer (3.5 s on two cores), doing nothing else. ``start`` launches
the same command before Prefect or the flows are imported, and points
``PREFECT_API_URL`` at it, so the server starts on one core while the CLI imports on
the other; ``ready`` waits for it just before the flow runs. It is stopped at exit, as
Prefect stops its own, and on Linux it is also stopped when the run is killed (SIGKILL,
the OOM killer), which no exit handler sees: it would hold its port and database.

``briefcast run`` goes further (``start_for_command``): it starts the server before it
imports the CLI, which takes a second that the server's start-up then overlaps.

Nothing changes where Prefect is told where its API is: an explicit
``PREFECT_API_URL``, a profile that sets one, ephemeral mode turned off, or Prefect
already imported (a test harness) leave it to Prefect.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

# What Prefect's own SubprocessASGIServer sets for its temporary server.
SERVER_ENV = {
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
}
DEFAULT_TIMEOUT = 90.0
# Prefect's two names for "a temporary server may start" (server.ephemeral.enabled).
_EPHEMERAL_SWITCHES = ("PREFECT_SERVER_EPHEMERAL_ENABLED", "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE")
_TRUE = ("1", "true", "yes", "on")
STARTUP_FAILURE = 3  # uvicorn's exit code when its start-up (or the bind) failed
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


class ServerDidNotStart(RuntimeError):
    pass


class EmbeddedServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.process = self._launch()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def _launch(self) -> subprocess.Popen:
        command = [sys.executable, "-m", "uvicorn", "--app-dir", str(_site_packages())]
        command += ["--factory", "prefect.server.api.server:create_app"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error"]
        command += ["--lifespan", "on"]
        return subprocess.Popen(
            command, env={**os.environ, **SERVER_ENV}, preexec_fn=_dies_with_us()
        )

    def ready(self, timeout: float | None = None) -> None:
        """Return once the server answers its health check; raise if it cannot.

        A start-up failure (uvicorn's exit code 3) is tried again, as Prefect does: two
        runs starting at once on a new Prefect database both migrate it, and one fails.
        """
        if timeout is None:
            timeout = _startup_timeout()
        deadline = time.monotonic() + timeout
        while True:
            code = self.process.poll()
            if code == STARTUP_FAILURE and time.monotonic() < deadline:
                self.process = self._launch()
            elif code is not None:
                raise ServerDidNotStart(
                    f"Prefect's temporary server on port {self.port} exited with code {code} "
                    "before it answered"
                )
            elif _healthy(f"{self.api_url}/health"):
                return
            elif time.monotonic() > deadline:
                raise ServerDidNotStart(
                    f"Prefect's temporary server did not answer within {timeout:g} s "
                    "(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS)"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_started: EmbeddedServer | None = None


def start_in(data_dir: Path) -> EmbeddedServer | None:
    """Prefect's home inside our data folder, its settings for a run, and its temporary
    server started (see ``start``). Once a process: a second call gives the first's server."""
    global _started
    if _started is not None or os.environ.get("PREFECT_API_URL"):
        return _started
    home = Path(os.environ.setdefault("PREFECT_HOME", str(data_dir / "prefect")))
    home.mkdir(parents=True, exist_ok=True)  # Prefect creates only the last level
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_API_BLOCKS_REGISTER_ON_START", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    _started = start()
    return _started


def start_for_command(argv: list[str]) -> None:
    """For ``briefcast run [--config PATH] ...``: the server of ``start_in`` started now,
    in the data folder of the config it names. Anything else is left to the CLI: another
    command, a config that does not load (the CLI says why), one that needs Prefect to
    read it (a Prefect secret)."""
    if not argv or argv[0] != "run" or "--help" in argv:
        return
    from briefcast.config import default_config_path, load_settings

    try:
        path = Path(
            _config_option(argv) or os.environ.get("BRIEFCAST_CONFIG") or default_config_path()
        )
        if "prefect_secret" in path.read_text(encoding="utf-8"):
            return
        settings = load_settings(path)
    except Exception:  # noqa: BLE001 - the CLI loads it again and reports the problem
        return
    start_in(settings.data_dir)


def _config_option(argv: list[str]) -> str | None:
    """The ``--config`` of ``briefcast run``, in any of the spellings Click accepts."""
    for index, arg in enumerate(argv):
        if arg in ("--config", "-c"):
            return argv[index + 1] if index + 1 < len(argv) else None
        if arg.startswith("--config="):
            return arg.removeprefix("--config=")
        if arg.startswith("-c"):  # -cPATH; run has no other short option
            return arg.removeprefix("-c")
    return None


def start() -> EmbeddedServer | None:
    """Launch the temporary server and set ``PREFECT_API_URL`` to it; None where Prefect
    is told otherwise (see the module's docstring). Call before importing Prefect."""
    if not _ours_to_start():
        return None
    server = EmbeddedServer(_free_port())
    atexit.register(server.stop)
    os.environ["PREFECT_API_URL"] = server.api_url
    return server


def _ours_to_start() -> bool:
    if "prefect" in sys.modules or os.environ.get("PREFECT_API_URL"):
        return False
    profile = _active_profile()
    if profile is None or profile.get("PREFECT_API_URL"):
        return False  # a profile we cannot read, or one that names a server: Prefect's call
    return all(
        str(os.environ.get(name, profile.get(name, "true"))).strip().lower() in _TRUE
        for name in _EPHEMERAL_SWITCHES
    )


def _active_profile() -> dict | None:
    """The settings of Prefect's active profile ({} with no profiles file; None when the
    file cannot be read: Prefect reads it its own way)."""
    home = Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect")).expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH", home / "profiles.toml")).expanduser()
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    return profiles.get("profiles", {}).get(active, {})


_PR_SET_PDEATHSIG = 1


def _dies_with_us():
    """What the server's process runs before it starts: ask Linux for a SIGTERM when the
    thread that started it ends (the main thread: start() runs before any other)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # looked up here: the child only makes the call
    parent = os.getpid()

    def ask() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # we were killed before the call: nobody would stop it
            os._exit(1)

    return ask


def _site_packages() -> Path:
    spec = importlib.util.find_spec("prefect")
    if spec is None or spec.origin is None:
        raise ServerDidNotStart("Prefect is not installed")
    return Path(spec.origin).parent.parent


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with _DIRECT.open(url, timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _startup_timeout() -> float:
    try:
        return float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", ""))
    except ValueError:
        return DEFAULT_TIMEOUT
