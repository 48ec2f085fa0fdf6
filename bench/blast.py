"""A raw smtplib loop: the baseline the SMTP channel is measured against.

``python -m bench.blast HOST PORT CONNECTIONS FILE`` sends every message in FILE
(as written by :func:`write_messages`) over CONNECTIONS sessions opened once,
with the same envelope sender and recipient the channel used. It runs in its
own process, as the CLI does, so it does not share the sink's interpreter lock.
"""

from __future__ import annotations

import queue
import smtplib
import struct
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

SENDER = "brief@harbourledger.example"


def write_messages(path: Path, messages: Iterable[tuple[str, bytes]]) -> None:
    with path.open("wb") as handle:
        for rcpt, data in messages:
            raw_rcpt = rcpt.encode()
            handle.write(struct.pack("!II", len(raw_rcpt), len(data)))
            handle.write(raw_rcpt)
            handle.write(data)


def read_messages(path: Path) -> list[tuple[str, bytes]]:
    data = path.read_bytes()
    out, offset = [], 0
    while offset < len(data):
        rcpt_len, data_len = struct.unpack_from("!II", data, offset)
        offset += 8
        rcpt = data[offset : offset + rcpt_len].decode()
        offset += rcpt_len
        out.append((rcpt, data[offset : offset + data_len]))
        offset += data_len
    return out


def blast(host: str, port: int, connections: int, messages: list[tuple[str, bytes]]) -> None:
    work: queue.SimpleQueue = queue.SimpleQueue()
    for item in messages:
        work.put(item)

    def sender() -> None:
        with smtplib.SMTP(host, port) as smtp:
            while True:
                try:
                    rcpt, data = work.get_nowait()
                except queue.Empty:
                    return
                smtp.sendmail(SENDER, [rcpt], data)

    threads = [threading.Thread(target=sender) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    host, port, connections, path = sys.argv[1:5]
    blast(host, int(port), int(connections), read_messages(Path(path)))
