"""``briefcast run --test-to``: an address with a typo is named before anything runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from flow_fixtures import write_newsroom
from pydantic import ValidationError

from briefcast.params import BriefParameters

ROOT = Path(__file__).resolve().parent.parent


def test_a_bad_test_address_is_one_line_and_nothing_runs(tmp_path):
    room = write_newsroom(tmp_path)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PREFECT_") and k not in {"BRIEFCAST_DATA", "BRIEFCAST_CONFIG"}
    }
    env["COLUMNS"] = "200"
    result = subprocess.run(
        [sys.executable, "-m", "briefcast", "run", "--config", str(room.config)]
        + ["--test-to", "editor@gazette.example,desk.gazette.example"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 2
    assert (result.stdout + result.stderr).strip() == (
        "error: --test-to: 'desk.gazette.example' is not an email address: "
        "An email address must have an @-sign."
    )
    assert not (room.data / "preview").exists()


def test_the_run_form_refuses_a_bad_test_address():
    with pytest.raises(ValidationError, match="'desk@' is not an email address"):
        BriefParameters(test_to=["editor@gazette.example", "desk@"])
    assert BriefParameters(test_to=["Editor@Gazette.example"]).test_to == ["Editor@Gazette.example"]
