"""The wheel, installed with its own dependencies in a fresh venv outside the checkout, starts a
newsroom with `briefcast init` and delivers its first day to the outbox."""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from briefcast.config import PROJECT_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def run(args: list, cwd: Path, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def clean_env(home: Path) -> dict:
    """The user's environment minus anything pointing back at the checkout or its venv."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "BRIEFCAST_", "PREFECT_", "PYTEST_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PREFECT_HOME"] = str(home / "prefect")  # else ~/.prefect, shared with the user
    return env


def test_the_wheel_installed_elsewhere_starts_a_newsroom_and_delivers_its_day(tmp_path):
    env = clean_env(tmp_path)
    wheels = tmp_path / "wheels"
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, PROJECT_ROOT],
        cwd=tmp_path,
        env=env,
    )
    (wheel,) = wheels.glob("briefcast-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"briefcast"}

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=tmp_path, env=env)
    bin_ = venv / "bin"
    run([bin_ / "python", "-m", "pip", "install", "-q", wheel], cwd=tmp_path, env=env)
    where = run(
        [
            bin_ / "python",
            "-c",
            "import briefcast, briefcast.resources as r; print(briefcast.__file__); "
            "print(r.BUILTIN_TEMPLATES)",
        ],
        cwd=tmp_path,
        env=env,
    ).stdout.split()
    site_packages = str(venv / "lib")
    assert all(path.startswith(site_packages) for path in where), where

    init = run(
        [
            bin_ / "briefcast",
            "init",
            "quay-post",
            "--name",
            "The Quay Post",
            "--timezone",
            "Europe/Lisbon",
            "--sender",
            "brief@quaypost.example",
        ],
        cwd=tmp_path,
        env=env,
    )
    newsroom = tmp_path / "quay-post"
    assert "briefcast run" in init.stdout
    imported = run(
        [bin_ / "briefcast", "subscribers", "import", "subscribers.csv"], cwd=newsroom, env=env
    )
    assert imported.stdout.startswith("5 imported")
    delivered = run([bin_ / "briefcast", "run"], cwd=newsroom, env=env)

    (edition,) = (newsroom / "var" / "outbox").iterdir()
    emails = sorted((edition / "email").glob("*.eml"))
    assert len(emails) == 5, delivered.stdout
    message = email.message_from_bytes(emails[0].read_bytes(), policy=email.policy.default)
    assert message["From"].addresses[0].addr_spec == "brief@quaypost.example"
    assert "Welcome to The Quay Post" in message.get_body(("plain",)).get_content()
    assert list((edition / "x").glob("post-*.json")) and list((edition / "telegram").iterdir())
