"""Which Host headers the API and the dashboard answer: the guard against DNS rebinding.

A page on an attacker's site can point its own name at 127.0.0.1 (or at any address the browser reaches) and
then read this server as same-origin; only the Host header, which carries the attacker's name, tells. So the
API and the dashboard answer only names known to be ours; the others get 421 Misdirected Request.

Always answered, whatever is configured: IP addresses (a page can only send an address as Host when its own
origin is that address, i.e. this server), `localhost`, the bound host name, and this machine's host name
when bound to every interface. Probes and /metrics answer any Host: kubelet and Prometheus name the pod IP,
and neither serves anything a rebinding page could use. Imports nothing from this package.
"""

from __future__ import annotations

import ipaddress
import socket

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_ANY_INTERFACE = frozenset({"", "0.0.0.0", "::"})


def host_name(header: str) -> str:
    """The name in a Host header, without port, brackets or trailing dot, lowercased."""
    host = header.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else host
    name, colon, port = host.rpartition(":")
    if colon and port.isascii() and port.isdigit():
        host = name
    return host.rstrip(".")


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class HostRule:
    def __init__(self, allowed: tuple[str, ...], bound_host: str):
        self.any = "*" in allowed
        names = {"localhost", *allowed}
        names.add(socket.gethostname().lower() if bound_host in _ANY_INTERFACE else bound_host.lower())
        self.names = frozenset(names)

    def allows(self, header: str | None) -> bool:
        # No Host at all (HTTP/1.0): browsers always send one, so no rebinding page arrives without it.
        if self.any or header is None:
            return True
        host = host_name(header)
        return host in self.names or is_address(host)
