"""A scriptable resolver for tests: chosen names answer chosen addresses, in turn.

Installed over socket.getaddrinfo (which requests-hardened, urllib3 and our
validator all call), it answers for the names it knows and passes every other
lookup, such as that of a literal 127.0.0.1, to the real resolver.
"""

import socket
from collections import defaultdict


class FakeDNS:
    def __init__(self, monkeypatch):
        self._real = socket.getaddrinfo
        self._answers: dict[str, list[str]] = {}
        self.lookups: dict[str, int] = defaultdict(int)
        monkeypatch.setattr(socket, "getaddrinfo", self.getaddrinfo)

    def answer(self, name: str, *addresses: str) -> None:
        """Make the n-th lookup of name answer the n-th address (the last one from then on); none: NXDOMAIN."""
        self._answers[name.lower().rstrip(".")] = list(addresses)

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else str(host)
        key = name.lower().rstrip(".")
        if key not in self._answers:
            return self._real(host, port, family, type, proto, flags)
        answers = self._answers[key]
        self.lookups[key] += 1
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        address = answers[min(self.lookups[key] - 1, len(answers) - 1)]
        if ":" in address:
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, int(port or 0), 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0)))]
