"""Secrets kept in Prefect: ``{ prefect_secret = "block-name" }`` in the config file.

The value is read from a Prefect ``Secret`` block on the configured Prefect API
when the config is loaded. Errors name the block, never its value.
"""

from __future__ import annotations


def load_prefect_secret(name: str) -> str:
    """The string stored in the Prefect Secret block ``name``; ValueError if there is none."""
    from prefect.blocks.system import Secret

    try:
        block = Secret.load(name)
    except ValueError as exc:  # Prefect's "Unable to find block document named ..."
        raise ValueError(
            f"Prefect Secret block {name!r} not found; create it with "
            f"Secret(value=...).save({name!r}) or in the UI under Blocks"
        ) from exc
    value = block.get()
    if not isinstance(value, str):
        raise ValueError(f"Prefect Secret block {name!r} must hold a string")
    return value
