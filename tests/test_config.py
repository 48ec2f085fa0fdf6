"""Config loading: validated at start, errors name the file and the key, secrets by reference."""

from __future__ import annotations

import pytest

from briefcast.config import ConfigFileError, load_settings

MINIMAL = """
[publication]
name = "The Test Gazette"
site_url = "https://gazette.example"
timezone = "America/New_York"
postal_address = "1 Main St, Springfield"
sender_email = "brief@gazette.example"
"""


def write(tmp_path, text):
    path = tmp_path / "briefcast.toml"
    path.write_text(text)
    return path


def test_minimal_config_loads_with_paths_relative_to_the_file(tmp_path):
    settings = load_settings(
        write(tmp_path, MINIMAL + '\n[[sources]]\nname="a"\ntype="markdown"\npath="articles"\n')
    )
    assert settings.publication.zone.key == "America/New_York"
    assert settings.path(settings.sources[0].path) == tmp_path / "articles"
    assert settings.data_dir == tmp_path / "var"


def test_unknown_key_is_refused_naming_file_and_key(tmp_path):
    path = write(
        tmp_path, MINIMAL.replace('name = "The Test Gazette"', 'name = "G"\ncolour = "red"')
    )
    with pytest.raises(ConfigFileError) as err:
        load_settings(path)
    message = str(err.value)
    assert str(path) in message
    assert "publication.colour: unknown key" in message


def test_bad_time_zone_and_missing_key_are_both_reported(tmp_path):
    text = MINIMAL.replace("America/New_York", "Mars/Olympus").replace(
        'postal_address = "1 Main St, Springfield"\n', ""
    )
    with pytest.raises(ConfigFileError) as err:
        load_settings(write(tmp_path, text))
    assert "publication.timezone" in str(err.value) and "Mars/Olympus" in str(err.value)
    assert "publication.postal_address: Field required" in str(err.value)


def test_source_errors_name_the_list_index(tmp_path):
    text = MINIMAL + '\n[[sources]]\nname = "wire"\ntype = "carrier-pigeon"\n'
    with pytest.raises(ConfigFileError, match=r"sources\[0\]\.type"):
        load_settings(write(tmp_path, text))


def test_not_toml_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigFileError, match="not valid TOML"):
        load_settings(write(tmp_path, "[publication\nname="))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigFileError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")


def test_secrets_are_references_resolved_from_the_environment_and_never_shown(monkeypatch):
    from pydantic import ValidationError

    from briefcast.config import Secret, Strict

    class Creds(Strict):
        api_key: Secret

    monkeypatch.setenv("TEST_API_KEY", "SG.very-secret")
    creds = Creds.model_validate({"api_key": {"env": "TEST_API_KEY"}})
    assert creds.api_key.get_secret_value() == "SG.very-secret"
    assert "very-secret" not in repr(creds) and "very-secret" not in str(creds.model_dump())

    with pytest.raises(ValidationError, match="never inline") as err:
        Creds.model_validate({"api_key": "SG.pasted-into-config"})
    assert "pasted-into-config" not in str(err.value)

    monkeypatch.delenv("TEST_API_KEY")
    with pytest.raises(ValidationError, match="TEST_API_KEY is not set"):
        Creds.model_validate({"api_key": {"env": "TEST_API_KEY"}})


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda folder: folder, "is a folder, not a config file"),
        (lambda folder: _latin1(folder), "not UTF-8 text"),
    ],
    ids=["folder", "latin-1"],
)
def test_an_unreadable_config_is_one_error_naming_the_file(tmp_path, make, expected):
    path = make(tmp_path)
    with pytest.raises(ConfigFileError) as err:
        load_settings(path)
    assert str(err.value).startswith(f"{path}: {expected}")


def _latin1(folder):
    path = folder / "latin1.toml"
    path.write_bytes(MINIMAL.replace("Springfield", "Sintra, Portugal, Caf\xe9").encode("latin-1"))
    return path


def test_a_templates_folder_that_does_not_exist_is_refused(tmp_path):
    path = write(tmp_path, 'data_dir = "var"\n[edition]\ntemplates = "our-look"\n' + MINIMAL)
    with pytest.raises(ConfigFileError) as err:
        load_settings(path)
    assert f"edition.templates: folder not found: {tmp_path / 'our-look'}" in str(err.value)

    (tmp_path / "our-look").mkdir()
    assert load_settings(path).templates_dir == tmp_path / "our-look"


def test_database_url_is_sqlite_or_postgresql_and_sqlite_paths_follow_the_file(tmp_path):
    with pytest.raises(ConfigFileError, match=r"database\.url: Value error, use sqlite"):
        load_settings(write(tmp_path, MINIMAL + '\n[database]\nurl = "mysql://db/brief"\n'))

    settings = load_settings(write(tmp_path, MINIMAL + '\n[database]\nurl = "sqlite:///l.db"\n'))
    assert settings.database_url == f"sqlite:///{tmp_path / 'l.db'}"
