"""One registry for channel adapters: the ``briefcast.channels`` entry point group.

Built-in adapters register through the same group as third-party packages, in
this project's own pyproject.toml. A plugin that fails to import is recorded
and reported, never allowed to crash the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points

GROUP = "briefcast.channels"


@dataclass
class Registry:
    adapters: dict[str, type] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> type:
        if name in self.adapters:
            return self.adapters[name]
        if name in self.broken:
            raise LookupError(f"channel adapter {name!r} failed to load: {self.broken[name]}")
        known = ", ".join(sorted(self.adapters)) or "none"
        raise LookupError(f"no channel adapter named {name!r} (installed: {known})")


def load_adapter(name: str) -> type:
    """One adapter by its entry point name, importing only that one; LookupError if absent."""
    for ep in entry_points(group=GROUP, name=name):
        try:
            return ep.load()
        except Exception as exc:  # a broken plugin must not take the run down
            raise LookupError(
                f"channel adapter {name!r} failed to load: {type(exc).__name__}: {exc}"
            ) from exc
    return load_registry().get(name)  # not installed: the error names what is


def load_registry() -> Registry:
    registry = Registry()
    for ep in entry_points(group=GROUP):
        try:
            adapter = ep.load()
        except Exception as exc:  # a broken plugin must not take the run down
            registry.broken[ep.name] = f"{type(exc).__name__}: {exc}"
            continue
        registry.adapters[ep.name] = adapter
    return registry
