"""`briefcast init DIR`: a newsroom folder whose first preview renders at once."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from briefcast import pipeline
from briefcast.cli import app
from briefcast.config import load_settings

NEWSROOM = ["--name", "The Quay Post", "--timezone", "Pacific/Auckland"]
SENDER = ["--sender", "brief@quaypost.example"]


def init(folder: Path, *options: str):
    return CliRunner().invoke(app, ["init", str(folder), *NEWSROOM, *SENDER, *options])


def test_init_makes_a_newsroom_whose_example_article_is_todays_edition(tmp_path):
    folder = tmp_path / "quay-post"

    result = init(folder)

    assert result.exit_code == 0, result.output
    assert "cd " in result.output and "briefcast run" in result.output
    settings = load_settings(folder / "briefcast.toml")
    assert settings.publication.name == "The Quay Post"
    assert settings.publication.timezone == "Pacific/Auckland"
    assert settings.publication.sender_email == "brief@quaypost.example"
    assert settings.data_dir == folder / "var"
    day = pipeline.today_in(settings)
    gathered = pipeline.gather_day(settings, day)
    assert [a.title for a in gathered.articles] == ["Welcome to The Quay Post's daily brief"]
    assert not (folder / "templates").exists()


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path):
    folder = tmp_path / "quay-post"
    folder.mkdir()
    (folder / "subscribers.csv").write_text("email\nreal.reader@example.org\n")

    result = init(folder)

    assert result.exit_code == 2
    assert "already has subscribers.csv; nothing was written" in result.output
    assert (folder / "subscribers.csv").read_text() == "email\nreal.reader@example.org\n"
    assert not (folder / "briefcast.toml").exists()


def test_init_with_templates_copies_them_for_restyling(tmp_path):
    folder = tmp_path / "quay-post"

    result = init(folder, "--templates")

    assert result.exit_code == 0, result.output
    settings = load_settings(folder / "briefcast.toml")
    assert settings.templates_dir == folder / "templates"
    assert (folder / "templates" / "email.mjml.j2").is_file()
    assert (folder / "templates" / "web" / "subscribe.html").is_file()


def test_one_overridden_template_changes_only_its_part(tmp_path):
    folder = tmp_path / "quay-post"
    init(folder)
    config = folder / "briefcast.toml"
    config.write_text(
        config.read_text().replace('# templates = "templates"', 'templates = "templates"')
    )
    (folder / "templates").mkdir()
    (folder / "templates" / "email_subject.txt.j2").write_text("Quay Post: {{ edition_date }}")
    settings = load_settings(config)

    edition = pipeline.render_day(
        settings, pipeline.gather_day(settings, pipeline.today_in(settings))
    )

    assert edition.email.subject.startswith("Quay Post: ")
    assert "Welcome to The Quay Post" in edition.email.text  # the built-in text template


def test_init_names_a_bad_time_zone_or_a_missing_answer(tmp_path):
    zone = CliRunner().invoke(
        app, ["init", str(tmp_path / "a"), "--name", "Q", "--timezone", "Lisbon", *SENDER]
    )
    missing = CliRunner().invoke(app, ["init", str(tmp_path / "b"), *NEWSROOM])

    assert zone.exit_code == 2 and "--timezone: unknown time zone 'Lisbon'" in zone.output
    assert missing.exit_code == 2 and "--sender is missing" in missing.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
