"""Serve the ``daily-brief`` deployment: the daily schedule and the UI's run form.

``briefcast serve`` calls :func:`serve`. The process registers the deployment
with the configured Prefect API, then polls it for runs (scheduled ones and
those started from the UI) and executes them in subprocesses until stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
from collections.abc import Callable
from typing import Any
from uuid import UUID

from briefcast.flows.daily_brief import daily_brief
from briefcast.flows.notifications import notification_block_id, set_up_notifications
from briefcast.flows.preview_server import PreviewServer
from prefect import get_client
from prefect.client.schemas.actions import DeploymentUpdate
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.exceptions import TerminationSignal
from prefect.runner import Runner
from prefect.schedules import Cron
from prefect.settings import get_current_settings

from briefcast.config import ConfigFileError, Settings

FLOW_NAME = "daily-brief"


class ServeError(Exception):
    """Serving cannot start; the message says what to do."""


def api_url() -> str:
    """The Prefect API to serve against; ServeError if none is configured or it does not answer."""
    url = get_current_settings().api.url
    if not url:
        raise ServeError(
            "PREFECT_API_URL is not set. Serving needs a running Prefect server: start one "
            "with `prefect server start` (UI at http://127.0.0.1:4200), then "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api` and run `briefcast serve` again."
        )
    with get_client(sync_client=True) as client:
        problem = client.api_healthcheck()
    if problem is not None:
        raise ServeError(
            f"no Prefect server answers at {url} ({problem}). Start one with "
            "`prefect server start`, or point PREFECT_API_URL at a running server, then run "
            "`briefcast serve` again."
        )
    return url


def daily_schedule(settings: Settings) -> Cron:
    """The config's cron, read in the publication's time zone (Prefect's default is UTC)."""
    try:
        return Cron(settings.schedule.cron, timezone=settings.publication.timezone)
    except ValueError as exc:
        where = settings.source_file or "config"
        raise ConfigFileError(f"{where}: schedule.cron: {exc}") from None


def default_parameters(settings: Settings) -> dict[str, Any]:
    """What a scheduled run (and the UI's form, pre-filled) gets."""
    brief: dict[str, Any] = {
        "require_approval": settings.schedule.require_approval,
        "days_ago": settings.schedule.days_ago,
    }
    if settings.source_file:
        brief["config_path"] = str(settings.source_file)
    return {"brief": brief}


def build_deployment(settings: Settings) -> RunnerDeployment:
    return daily_brief.to_deployment(
        name=settings.schedule.deployment,
        schedules=[daily_schedule(settings)],
        parameters=default_parameters(settings),
        description=(
            f"The daily brief of {settings.publication.name}: {settings.schedule.cron} "
            f"({settings.publication.timezone})"
            + (
                ", approved by an operator before it goes out."
                if settings.schedule.require_approval
                else "."
            )
        ),
        tags=["briefcast"],
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def offer_configured_channels(schema: dict[str, Any], channels: list[str]) -> dict[str, Any]:
    """The parameter schema with the channels field limited to the configured channels.

    The UI then offers them as a multi-select, and the server refuses any other name.
    """
    for definition in schema.get("definitions", {}).values():
        field = definition.get("properties", {}).get("channels")
        if field and field.get("type") == "array" and channels:
            field["items"] = {**field.get("items", {}), "enum": list(channels)}
            field["uniqueItems"] = True
    return schema


def register(settings: Settings, runner: Runner) -> UUID:
    """Create or update the deployment (and its notifications) on the server; return its id."""
    with get_client(sync_client=True) as client:  # first: a missing block changes nothing
        block_id = notification_block_id(settings, client) if settings.schedule.notify else None
    deployment_id = runner.add_deployment(build_deployment(settings))
    with get_client(sync_client=True) as client:
        schema = client.read_deployment(deployment_id).parameter_openapi_schema or {}
        client.update_deployment(
            deployment_id,
            DeploymentUpdate(
                parameter_openapi_schema=offer_configured_channels(schema, list(settings.channels))
            ),
        )
        set_up_notifications(settings, deployment_id, client, block_id)
    return deployment_id


def start_preview(settings: Settings) -> PreviewServer:
    """The reviewer's preview, served from this process; its runs link to it."""
    schedule = settings.schedule
    try:
        server = PreviewServer(
            settings.data_dir / "preview", schedule.preview_host, schedule.preview_port
        )
    except OSError as exc:
        where = settings.source_file or "config"
        raise ConfigFileError(
            f"{where}: schedule.preview_port: cannot serve the preview on "
            f"{schedule.preview_host}:{schedule.preview_port}: {exc.strerror or exc}"
        ) from None
    server.start().announce()
    if not is_loopback(schedule.preview_host):
        logging.getLogger("briefcast").warning(
            "the preview is served on %s, reachable from other machines: anyone with a run's "
            "link can read its unpublished edition. Keep it on your internal network.",
            schedule.preview_host,
        )
    return server


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    settings: Settings, *, pause_on_shutdown: bool = False, say: Callable[[str], None] = print
) -> None:
    """Register the deployment and execute its runs until interrupted."""
    api_url()
    if settings.source_file:  # a run whose form left "Config file" empty uses ours
        os.environ["BRIEFCAST_CONFIG"] = str(settings.source_file)
    runner = Runner(
        name=f"briefcast-{settings.schedule.deployment}", pause_on_shutdown=pause_on_shutdown
    )
    preview = start_preview(settings)
    try:
        register(settings, runner)
        say(f"Reviewer previews: {preview.url}/<edition>/ (linked from each run's artifacts).")
        notify = settings.schedule.notify
        say(
            f"Notifications: failed runs and runs waiting for approval, through {notify}."
            if notify
            else "Notifications: none ([schedule] notify names a Prefect notification block)."
        )
        with contextlib.suppress(KeyboardInterrupt, TerminationSignal):  # a normal stop
            asyncio.run(runner.start())
    finally:
        preview.stop()


def deployment_name(settings: Settings) -> str:
    return f"{FLOW_NAME}/{settings.schedule.deployment}"
