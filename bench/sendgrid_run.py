"""N subscribers through ``briefcast run --channels sendgrid`` against a loopback stand-in."""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.standins import SendGridStandIn
from bench.workspace import SAMPLE_DAY, briefcast, database, import_subscribers, write_config

API_KEY = "SG.bench-not-a-secret"


@dataclass
class SendGridResult:
    subscribers: int
    db: str
    latency: float
    wall: float
    first_request: float | None
    requests: int
    max_in_flight: int
    peak_rss: int
    peak_rss_main: int
    import_wall: float
    import_rss: int
    missing: int
    duplicates: int
    strangers: int
    refused: list[str]
    returncode: int
    output: str

    @property
    def floor(self) -> float:
        return math.ceil(self.subscribers / 1000) * self.latency / max(1, self.max_in_flight)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not (self.missing or self.duplicates or self.refused)


def run(
    subscribers: int, db: str, latency: float, prefect_home: Path | None = None
) -> SendGridResult:
    """One run; ``prefect_home``: a warm Prefect home (else a fresh one in the data folder)."""
    env = {"BENCH_SENDGRID_KEY": API_KEY}
    if prefect_home is not None:
        env["PREFECT_HOME"] = str(prefect_home)
    with (
        tempfile.TemporaryDirectory(prefix="briefcast-bench-") as tmp,
        SendGridStandIn(latency) as standin,
    ):
        folder = Path(tmp)
        with database(db, folder) as url:
            channels = (
                "[channels.sendgrid]\n"
                'api_key = { env = "BENCH_SENDGRID_KEY" }\n'
                f'base_url = "{standin.url}"\n'
            )
            config = write_config(folder, url, channels)
            addresses, imported = import_subscribers(folder, config, subscribers)
            result = briefcast(
                "run",
                "--date",
                SAMPLE_DAY,
                "--channels",
                "sendgrid",
                config=config,
                env=env,
            )
        received = standin.received
        expected = set(addresses)
        return SendGridResult(
            subscribers=subscribers,
            db=db,
            latency=latency,
            wall=result.wall,
            first_request=(
                standin.first_request - result.started if standin.first_request else None
            ),
            requests=standin.requests,
            max_in_flight=standin.max_in_flight,
            peak_rss=result.peak_rss,
            peak_rss_main=result.peak_rss_main,
            import_wall=imported.wall,
            import_rss=imported.peak_rss,
            missing=sum(1 for a in expected if received[a] == 0),
            duplicates=sum(count - 1 for a, count in received.items() if count > 1),
            strangers=sum(1 for a in received if a not in expected),
            refused=list(standin.refused),
            returncode=result.returncode,
            output=result.stdout[-3000:] + result.stderr[-3000:],
        )
