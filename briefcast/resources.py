"""Files installed inside the package: templates, default config, sample newsroom.

In the repository they are the top-level folders templates/, config/ and sample/;
installed, they are the packages briefcast.templates, briefcast.defaults and
briefcast.sample (see ``[tool.setuptools.package-dir]``). Both an installed wheel
and an editable checkout keep them as plain files, so a Path is safe to hand to
Jinja's FileSystemLoader.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def packaged_folder(package: str, checkout_folder: str) -> Path:
    try:
        return Path(str(files(package)))
    except ModuleNotFoundError:  # a checkout on sys.path without `pip install -e .`
        return Path(__file__).resolve().parent.parent / checkout_folder


BUILTIN_TEMPLATES = packaged_folder("briefcast.templates", "templates")
DEFAULTS = packaged_folder("briefcast.defaults", "config")
SAMPLE = packaged_folder("briefcast.sample", "sample")
