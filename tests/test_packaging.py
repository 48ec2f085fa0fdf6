"""The wheel's layout as pyproject.toml declares it: every package folder and data file is in."""

from __future__ import annotations

import tomllib
from pathlib import Path

from briefcast.config import PROJECT_ROOT
from briefcast.resources import BUILTIN_TEMPLATES, DEFAULTS, SAMPLE

SETUPTOOLS = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def installed_name(folder: Path) -> str:
    """The package a repository folder installs as, by the package-dir mapping."""
    relative = folder.relative_to(PROJECT_ROOT).as_posix()
    for package, source in sorted(SETUPTOOLS["package-dir"].items(), key=lambda i: -len(i[1])):
        if relative == source or relative.startswith(source + "/"):
            return package + relative.removeprefix(source).replace("/", ".")
    raise AssertionError(f"{relative} is outside every package-dir folder")


def test_every_python_package_folder_is_listed_for_the_wheel():
    roots = {PROJECT_ROOT / source for source in SETUPTOOLS["package-dir"].values()}
    folders = {init.parent for root in roots for init in root.rglob("__init__.py")}
    missing = {installed_name(f) for f in folders} - set(SETUPTOOLS["packages"])
    assert not missing, f"add to [tool.setuptools] packages: {sorted(missing)}"


def test_every_data_file_matches_a_package_data_pattern():
    data = SETUPTOOLS["package-data"]
    unmatched = []
    for folder in (BUILTIN_TEMPLATES, DEFAULTS, SAMPLE):
        package = installed_name(folder)
        shipped = {path for pattern in data[package] for path in folder.glob(pattern)}
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix not in {".py", ".pyc"} and path not in shipped:
                unmatched.append(f"{package}: {path.relative_to(folder)}")
    assert not unmatched, f"add to [tool.setuptools.package-data]: {unmatched}"
