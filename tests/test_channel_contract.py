"""One suite over every registered channel adapter: the contract, the registry, the docs."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest
from briefcast.channels.base import ChannelSettings
from briefcast.channels.registry import load_registry
from pydantic import ValidationError
from support import make_edition

REGISTRY = load_registry()
ADAPTERS = sorted(REGISTRY.adapters.items())
DOCS = (Path(__file__).resolve().parent.parent / "docs" / "channels.md").read_text()


def test_built_in_adapters_register_through_the_entry_point_group():
    assert {"outbox", "sendgrid", "smtp", "x", "telegram", "bluesky", "mastodon"} <= set(
        REGISTRY.adapters
    )
    assert REGISTRY.broken == {}


@pytest.mark.parametrize(("name", "adapter"), ADAPTERS)
def test_adapter_shape(name, adapter):
    assert adapter.name == name
    assert issubclass(adapter.Settings, ChannelSettings)
    assert isinstance(adapter.max_batch, int) and adapter.max_batch >= 1
    for method in ("plan", "send", "close"):
        assert callable(getattr(adapter, method)), method
    # A claims_each adapter also takes the dispatcher's handover (channels/base.py).
    expected = ["batch", "handover"] if getattr(adapter, "claims_each", False) else ["batch"]
    assert list(inspect.signature(adapter.send).parameters)[1:] == expected


@pytest.mark.parametrize(("name", "adapter"), ADAPTERS)
def test_settings_refuse_unknown_keys_and_inline_secrets(name, adapter):
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        adapter.Settings.model_validate({"surely_not_a_setting": 1})
    secret_fields = [
        field
        for field, info in adapter.Settings.model_fields.items()
        if "SecretStr" in str(info.annotation)
    ]
    for field in secret_fields:
        with pytest.raises(ValidationError) as err:
            adapter.Settings.model_validate({field: "pasted-secret-value"})
        assert "pasted-secret-value" not in str(err.value)


@pytest.mark.parametrize(("name", "adapter"), ADAPTERS)
def test_every_setting_is_documented(name, adapter):
    section = DOCS.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
    for field in adapter.Settings.model_fields:
        assert f"| `{field}` |" in section, f"docs/channels.md lacks {name}.{field}"


def test_a_broken_plugin_is_reported_not_fatal(tmp_path, monkeypatch):
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[briefcast.channels]\npigeon = broken_plugin_module_that_does_not_exist:Pigeon\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = load_registry()
    assert "ModuleNotFoundError" in registry.broken["pigeon"]
    assert "outbox" in registry.adapters
    with pytest.raises(LookupError, match="pigeon.*failed to load"):
        registry.get("pigeon")
    with pytest.raises(LookupError, match="installed: .*outbox"):
        registry.get("carrier")
    assert "broken_plugin_module_that_does_not_exist" not in sys.modules


def test_a_channel_that_cannot_start_is_reported_and_the_others_go_on(tmp_path):
    from briefcast import pipeline
    from briefcast.config import Settings
    from briefcast.models import TelegramMessage, XPost

    settings = Settings.model_validate(
        {
            "publication": {
                "name": "G",
                "site_url": "https://g.example",
                "postal_address": "1 Main St",
                "sender_email": "b@g.example",
            },
            "channels": {"pigeon": {"type": "carrier-pigeon"}, "outbox": {}},
            "base_dir": tmp_path,
        }
    )
    edition = make_edition(
        publication="G",
        site_url="https://g.example",
        x_posts=[XPost(text="Hello", weighted_length=5)],
        telegram_messages=[TelegramMessage(text="<b>Hello</b>")],
    )
    broken = pipeline.deliver(settings, edition, "pigeon", [])
    assert broken.failed == 1 and "no channel adapter named 'carrier-pigeon'" in broken.errors[0]
    works = pipeline.deliver(settings, edition, "outbox", [])
    assert works.ok and works.delivered == len(edition.x_posts) + len(edition.telegram_messages)


PIGEON = Path(__file__).resolve().parent / "fixtures" / "pigeon_plugin"


def install_pigeon(site: Path) -> None:
    """Install the example plugin the way pip does: its package on the path and a
    .dist-info whose entry_points.txt comes from the plugin's own pyproject.toml."""
    import tomllib

    project = tomllib.loads((PIGEON / "pyproject.toml").read_text())["project"]
    dist = site / "briefcast_pigeon-1.0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines = ["[briefcast.channels]"] + [
        f"{name} = {target}"
        for name, target in project["entry-points"]["briefcast.channels"].items()
    ]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")


def test_a_third_party_adapter_installs_through_its_entry_point_and_delivers(tmp_path, monkeypatch):
    from briefcast import pipeline
    from briefcast.config import Settings
    from briefcast.models import XPost

    install_pigeon(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(PIGEON))
    registry = load_registry()
    assert registry.get("pigeon").__module__ == "briefcast_pigeon"
    assert not registry.broken

    loft = tmp_path / "loft"
    loft.mkdir()
    settings = Settings.model_validate(
        {
            "publication": {
                "name": "G",
                "site_url": "https://g.example",
                "postal_address": "1 Main St",
                "sender_email": "b@g.example",
            },
            "channels": {"pigeon": {"loft": str(loft)}},
            "base_dir": tmp_path,
        }
    )
    edition = make_edition(x_posts=[XPost(text=t, weighted_length=3) for t in ("one", "two")])

    first = pipeline.deliver(settings, edition, "pigeon", [])
    again = pipeline.deliver(settings, edition, "pigeon", [])

    assert (first.delivered, first.ok) == (2, True)
    assert (again.delivered, again.skipped) == (0, 2)  # the ledger works for plugins too
    assert sorted(p.name for p in loft.iterdir()) == ["note-1.json", "note-2.json"]
