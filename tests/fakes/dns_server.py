"""A DNS server on 127.0.0.1 (UDP) answering from a dict, for the sender DNS checks.

``records`` maps a name ("quaypost.news") to {type: [rdata text]}, e.g.
{"TXT": ['"v=spf1 include:sendgrid.net -all"']}. A name not in it is NXDOMAIN; a known
name without the asked type gets an empty answer (NOERROR, NODATA).
"""

from __future__ import annotations

import socket
import threading

import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.rrset


class FakeDns:
    def __init__(self, records: dict[str, dict[str, list[str]]]) -> None:
        self.records = {name.lower().rstrip("."): types for name, types in records.items()}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FakeDns:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join()
        self.sock.close()

    def resolver(self) -> dns.resolver.Resolver:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        resolver.lifetime = 2
        return resolver

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            question = query.question[0]
            types = self.records.get(question.name.to_text().lower().rstrip("."))
            if types is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            else:
                kind = dns.rdatatype.to_text(question.rdtype)
                if types.get(kind):
                    response.answer.append(
                        dns.rrset.from_text(question.name, 300, "IN", kind, *types[kind])
                    )
            self.sock.sendto(response.to_wire(), peer)
