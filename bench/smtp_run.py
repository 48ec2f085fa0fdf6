"""``briefcast run --channels smtp`` next to a raw smtplib blast of the same messages.

Both go to the same loopback aiosmtpd sink in the same run, over the same number
of connections; each rate is messages over the time between the first and the
last message the sink received, so start-up (Prefect, gather, render) is left out
of the channel's rate and reported separately as the CLI's wall time.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.blast import write_messages
from bench.standins import SmtpSinkStandIn
from bench.workspace import (
    ROOT,
    SAMPLE_DAY,
    briefcast,
    cli_env,
    database,
    import_subscribers,
    write_config,
)


@dataclass
class SmtpResult:
    messages: int
    connections: int
    message_bytes: int  # average size of one message
    wall: float
    channel_rate: float  # msgs/s, first to last message at the sink
    raw_rate: float
    missing: int
    duplicates: int
    returncode: int
    output: str

    @property
    def ratio(self) -> float:
        return self.channel_rate / self.raw_rate if self.raw_rate else 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not (self.missing or self.duplicates)


def _rate(sink: SmtpSinkStandIn) -> float:
    span = (sink.last or 0) - (sink.first or 0)
    return (sink.messages - 1) / span if span > 0 else 0.0


def run(messages: int, db: str, connections: int = 2, claims: str = "each") -> SmtpResult:
    with tempfile.TemporaryDirectory(prefix="briefcast-bench-") as tmp, SmtpSinkStandIn() as sink:
        folder = Path(tmp)
        with database(db, folder) as url:
            channels = (
                "[channels.smtp]\n"
                'host = "127.0.0.1"\n'
                f"port = {sink.port}\n"
                'security = "plain"\n'
                f"connections = {connections}\n"
                f'claims = "{claims}"\n'
            )
            config = write_config(folder, url, channels)
            addresses, _ = import_subscribers(folder, config, messages)
            sink.keep = True
            result = briefcast("run", "--date", SAMPLE_DAY, "--channels", "smtp", config=config)
            sink.keep = False
        received = dict(sink.received)
        channel_rate = _rate(sink)
        size = sink.bytes // max(1, sink.messages)
        kept = sorted(sink.kept)
        sink.kept = []
        sink.reset()
        raw_rate = 0.0
        if kept:
            path = folder / "messages.bin"
            write_messages(path, kept)
            del kept
            command = [sys.executable, "-m", "bench.blast", "127.0.0.1", str(sink.port)]
            subprocess.run(
                [*command, str(connections), str(path)], cwd=ROOT, env=cli_env(), check=True
            )
            raw_rate = _rate(sink)
        return SmtpResult(
            messages=messages,
            connections=connections,
            message_bytes=size,
            wall=result.wall,
            channel_rate=channel_rate,
            raw_rate=raw_rate,
            missing=sum(1 for a in addresses if a not in received),
            duplicates=sum(count - 1 for count in received.values() if count > 1),
            returncode=result.returncode,
            output=result.stdout[-3000:] + result.stderr[-3000:],
        )
