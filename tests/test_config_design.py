"""The [design] and [utm.<variant>] tables: defaults, validation, errors naming the key."""

from __future__ import annotations

import pytest

from briefcast.config import DEFAULT_CONFIG, ConfigFileError, load_settings

MINIMAL = """
[publication]
name = "The Test Gazette"
site_url = "https://gazette.example"
postal_address = "1 Main St, Springfield"
sender_email = "brief@gazette.example"
"""


def write(tmp_path, text):
    path = tmp_path / "briefcast.toml"
    path.write_text(MINIMAL + text)
    return path


def test_design_and_utm_load_from_the_file(tmp_path):
    settings = load_settings(
        write(
            tmp_path,
            '[design]\nbrand_color = "#B3261E"\ntagline = "Ports and trade"\n'
            '[utm.email]\nsource = "gazette"\nmedium = "email"\ncampaign = "brief-{date}"\n',
        )
    )
    assert settings.design.brand_color == "#B3261E"
    assert settings.design.tagline == "Ports and trade"
    assert settings.utm["email"].campaign == "brief-{date}"
    assert "telegram" not in settings.utm


def test_without_the_tables_the_defaults_apply(tmp_path):
    settings = load_settings(write(tmp_path, ""))
    assert settings.design.brand_color.startswith("#") and settings.design.logo_url == ""
    assert settings.utm == {}
    assert load_settings(DEFAULT_CONFIG).design.brand_color == "#0f5e78"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[design]\nbrand_color = "teal"\n', "design.brand_color"),
        ('[design]\nlogo_url = "logo.png"\n', "design.logo_url"),
        ('[utm.email]\nsorce = "x"\n', "utm.email.sorce: unknown key"),
    ],
)
def test_bad_values_are_refused_naming_the_key(tmp_path, text, key):
    with pytest.raises(ConfigFileError) as err:
        load_settings(write(tmp_path, text))
    assert key in str(err.value)
