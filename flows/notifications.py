"""Tell the desk when the morning brief fails or waits for approval, without watching the UI.

``briefcast serve`` calls :func:`set_up_notifications` after registering the deployment.
With ``[schedule] notify = "block-type-slug/block-name"`` it creates two Prefect
automations on the server that send through that notification block (Slack, a custom
webhook, email, ... whatever the operator created under Blocks):

- a run of the deployment ended Failed or Crashed (a delivery failed or is in doubt,
  nobody approved in time, the run broke);
- a run paused and waits for an operator's approval.

The server runs them: they fire whether or not ``briefcast serve`` still runs. Without
``notify`` the automations are removed, so a stale one never keeps notifying.
"""

from __future__ import annotations

from uuid import UUID

from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.exceptions import ObjectNotFound

from briefcast.config import ConfigFileError, Settings

FAILED_TYPES = ["FAILED", "CRASHED"]

BODY = (
    "{{ flow.name }}/{{ deployment.name }}: run {{ flow_run.name }} is "
    "{{ flow_run.state.name }}.\n{{ flow_run.state.message or '' }}\n"
    "Open it: {{ flow_run|ui_url }}"
)

FAILED_SUBJECT = "The daily brief failed: {{ flow_run.name }} ({{ flow_run.state.name }})"
PAUSED_SUBJECT = "The daily brief waits for your approval: {{ flow_run.name }}"


def automation_names(deployment: str) -> dict[str, str]:
    return {
        "failed": f"briefcast {deployment}: a run failed",
        "paused": f"briefcast {deployment}: a run waits for approval",
    }


def _trigger(deployment_id: UUID, states: dict[str, list[str] | str]) -> EventTrigger:
    return EventTrigger(
        expect={"prefect.flow-run.*"},
        match={"prefect.resource.id": "prefect.flow-run.*", **states},
        match_related={
            "prefect.resource.id": f"prefect.deployment.{deployment_id}",
            "prefect.resource.role": "deployment",
        },
        posture=Posture.Reactive,
        threshold=1,
        within=0,
    )


def notification_block_id(settings: Settings, client) -> UUID:
    """The configured block's id; ConfigFileError naming the key when it is missing or
    cannot notify."""
    where = settings.source_file or "config"
    slug, _, name = settings.schedule.notify.partition("/")
    try:
        block = client.read_block_document_by_name(name, slug, include_secrets=False)
    except ObjectNotFound:
        raise ConfigFileError(
            f"{where}: schedule.notify: no Prefect block {settings.schedule.notify!r}. Create "
            "it in the Prefect UI (Blocks → Add: Slack Webhook, Custom Webhook, ...) under that "
            "name, or remove the key."
        ) from None
    if "notify" not in (block.block_schema.capabilities if block.block_schema else []):
        raise ConfigFileError(
            f"{where}: schedule.notify: block {settings.schedule.notify!r} cannot send "
            "notifications; pick a notification block (Slack Webhook, Custom Webhook, ...)."
        )
    return block.id


def set_up_notifications(
    settings: Settings, deployment_id: UUID, client, block_id: UUID | None
) -> list[str]:
    """Create (or replace) this deployment's automations; return their names.

    ``block_id`` is :func:`notification_block_id`, looked up before anything is changed,
    so a config naming a missing block leaves the working automations alone.
    """
    names = automation_names(settings.schedule.deployment)
    for name in names.values():
        for automation in client.read_automations_by_name(name):
            client.delete_automation(automation.id)
    if block_id is None:
        return []
    failed = SendNotification(block_document_id=block_id, subject=FAILED_SUBJECT, body=BODY)
    paused = SendNotification(block_document_id=block_id, subject=PAUSED_SUBJECT, body=BODY)
    automations = [
        AutomationCore(
            name=names["failed"],
            description="briefcast serve: a run of the daily brief ended Failed or Crashed.",
            trigger=_trigger(deployment_id, {"prefect.state-type": FAILED_TYPES}),
            actions=[failed],
        ),
        AutomationCore(
            name=names["paused"],
            description="briefcast serve: a run of the daily brief waits for approval.",
            trigger=_trigger(deployment_id, {"prefect.state-type": "PAUSED"}),
            actions=[paused],
        ),
    ]
    for automation in automations:
        client.create_automation(automation)
    return [automation.name for automation in automations]
