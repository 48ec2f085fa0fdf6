"""Secrets from Prefect Secret blocks, and secrets kept out of what a run shows."""

from __future__ import annotations

import pytest
from flow_fixtures import (
    EDITION_DATE,
    run_artifacts,
    write_newsroom,
)

from briefcast.config import ConfigFileError, load_settings
from briefcast.params import BriefParameters

pytestmark = pytest.mark.usefixtures("prefect_harness")

LINK_SECRET = "s3cr3t-link-key-9f8e7d6c5b4a"
WEB_SECRET_FROM_BLOCK = '\n[web]\nsecret = { prefect_secret = "briefcast-link-key" }\n'


@pytest.fixture
def room(tmp_path, monkeypatch):
    monkeypatch.delenv("BRIEFCAST_DATA", raising=False)
    return write_newsroom(tmp_path, subscribers=(), schedule=WEB_SECRET_FROM_BLOCK)


def test_config_reads_a_prefect_secret_block(room):
    from prefect.blocks.system import Secret

    Secret(value=LINK_SECRET).save("briefcast-link-key", overwrite=True)

    settings = load_settings(room.config)

    assert settings.web.secret.get_secret_value() == LINK_SECRET
    assert LINK_SECRET not in repr(settings) and LINK_SECRET not in str(settings.web)


def test_a_missing_block_names_the_key_and_the_block(tmp_path, monkeypatch):
    monkeypatch.delenv("BRIEFCAST_DATA", raising=False)
    room = write_newsroom(
        tmp_path,
        subscribers=(),
        schedule='\n[web]\nsecret = { prefect_secret = "no-such-block" }\n',
    )

    with pytest.raises(ConfigFileError) as caught:
        load_settings(room.config)
    assert "web.secret" in str(caught.value)
    assert "'no-such-block' not found" in str(caught.value)


def test_no_artifact_carries_a_secret(tmp_path, monkeypatch):
    from briefcast.flows.daily_brief import daily_brief
    from prefect.blocks.system import Secret

    monkeypatch.delenv("BRIEFCAST_DATA", raising=False)
    Secret(value=LINK_SECRET).save("briefcast-link-key", overwrite=True)
    room = write_newsroom(tmp_path, schedule=WEB_SECRET_FROM_BLOCK)

    state = daily_brief(
        BriefParameters(edition_date=EDITION_DATE, config_path=str(room.config)),
        return_state=True,
    )

    assert state.is_completed(), state.message
    found = run_artifacts(state.state_details.flow_run_id)
    assert len(found) == 4  # preview, email HTML, delivery report, progress
    for artifact in found.values():
        assert LINK_SECRET not in str(artifact.data) and LINK_SECRET not in str(
            artifact.description
        )
    for path in room.data.rglob("*"):
        if path.is_file() and path.suffix in {".html", ".txt", ".json", ".eml"}:
            assert LINK_SECRET not in path.read_text(encoding="utf-8", errors="replace"), path
