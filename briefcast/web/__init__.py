"""The subscriber web app: subscribe with double opt-in, one-click unsubscribe, the archive
and the SendGrid Event Webhook. ``links`` is importable without the web stack."""
