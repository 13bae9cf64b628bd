"""The SSRF guard (OWASP API7): subscription targets reach only public addresses.

A target URL must be ``http(s)`` with a host. At creation its host is resolved and *every*
address must be public; at connect time the push resolves again, checks the addresses again and
connects to the checked address itself (TLS still verifies the host name), so a DNS answer that
changes between the check and the connection (rebinding) cannot reach an internal service.
Refused: loopback, private, link-local (and so the cloud metadata address), multicast, shared,
reserved and unspecified addresses, IPv4-mapped forms included. ``TRIGGERS_DESTINATION_ALLOW_PRIVATE``
lifts the rule (a laptop's receivers are on loopback); ``TRIGGERS_DESTINATION_ALLOWLIST`` names
hosts or CIDRs allowed anyway (an internal n8n, say).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from triggers_api.config import Settings
from triggers_api.errors import DestinationNotAllowed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Cloud metadata endpoints (AWS, GCP, Azure; AWS's IPv6 one), refused even when private is allowed.
METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
RESOLVE_TIMEOUT = 5.0


class DestinationGuard:
    def __init__(self, allow_private: bool = False, allowlist: str = "") -> None:
        self.allow_private = allow_private
        self.hosts: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for item in (part.strip() for part in allowlist.split(",")):
            if not item:
                continue
            try:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self.hosts.add(item.lower().rstrip("."))

    @classmethod
    def from_settings(cls, settings: Settings) -> DestinationGuard:
        return cls(settings.destination_allow_private, settings.destination_allowlist)

    @staticmethod
    def parse(url: str) -> tuple[str, int]:
        """(host, port) of an acceptable URL's shape, else :class:`DestinationNotAllowed`."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise DestinationNotAllowed(
                "target_url is not a valid URL", details={"target_url": url}
            ) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DestinationNotAllowed(
                "target_url must be an http:// or https:// URL with a host", details={"target_url": url}
            )
        if parts.username or parts.password:
            raise DestinationNotAllowed("target_url must not carry credentials", details={"target_url": url})
        return parts.hostname.lower().rstrip("."), port or (443 if parts.scheme == "https" else 80)

    def address_allowed(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in net for net in self.networks):
            return True
        if address in METADATA:
            return False
        if self.allow_private:
            return not address.is_multicast
        return address.is_global and not address.is_multicast

    async def resolve(self, host: str, port: int) -> list[str]:
        """The host's addresses, each checked; raises :class:`DestinationNotAllowed`."""
        try:
            literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            try:
                async with asyncio.timeout(RESOLVE_TIMEOUT):
                    infos = await asyncio.get_running_loop().getaddrinfo(
                        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                    )
            except (OSError, TimeoutError, UnicodeError):
                raise DestinationNotAllowed(
                    f"target host {host!r} does not resolve", details={"host": host}
                ) from None
            addresses = list(
                dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
            )
        if host in self.hosts:
            return [str(a) for a in addresses]
        refused = [str(a) for a in addresses if not self.address_allowed(a)]
        if refused or not addresses:
            raise DestinationNotAllowed(
                f"target host {host!r} resolves to a non-public address",
                details={"host": host, "addresses": refused},
            )
        return [str(a) for a in addresses]

    async def check_url(self, url: str) -> None:
        host, port = self.parse(url)
        await self.resolve(host, port)
