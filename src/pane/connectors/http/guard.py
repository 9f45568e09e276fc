"""Vendor base URLs are user input: without this, a link could make pane call its own
database, the cloud metadata service or anything else on the operator's network."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx


class TargetNotAllowed(httpx.TransportError):
    """The URL points at a private, loopback, link-local or otherwise internal address."""


def _internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


async def resolve_public(host: str, port: int) -> None:
    """Refuse ``host`` unless every address it resolves to is public."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    blocked = sorted({str(address) for address in addresses if _internal(address)})
    if blocked:
        raise TargetNotAllowed(
            f"{host} resolves to an internal address ({', '.join(blocked)}); "
            "vendor URLs must be public"
        )


class PublicOnlyTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await resolve_public(request.url.host, request.url.port or 443)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
