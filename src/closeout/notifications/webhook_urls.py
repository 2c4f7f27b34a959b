"""Where webhooks may go: http(s) URLs whose host is not this machine nor an internal network.

A webhook is a request the server makes on an administrator's say-so, so an unchecked URL is a
way into the internal network (request forgery). Refused: loopback, private, link-local,
shared (carrier NAT), multicast, reserved, unspecified and every other non-global address,
IPv4 and IPv6, also when written as IPv4-mapped or NAT64/6to4/Teredo IPv6, or in the legacy
decimal, octal, hexadecimal or shortened IPv4 spellings (2130706433, 0x7f.1, 127.1).

The URL is checked when an endpoint is created, and again at each delivery, where the host is
resolved, every address it resolves to is checked, and the connection goes to one of those
checked addresses (so a DNS answer that changes between the check and the connection cannot
slip through). `settings.CLOSEOUT_WEBHOOK_ALLOWED_HOSTS` names the exceptions: host names
(matched exactly, case-insensitively) or addresses and networks ("10.1.2.0/24").
"""

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext_noop

from closeout.core.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ALLOWED_SCHEMES = ("http", "https")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class WebhookAddressRefused(OSError):
    """Raised while connecting: the host resolved to an address webhooks may not reach.
    (An OSError, so urllib reports it as the delivery attempt's error.)"""


def _allowed_entries() -> tuple[set[str], list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    names: set[str] = set()
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for raw in getattr(settings, "CLOSEOUT_WEBHOOK_ALLOWED_HOSTS", []) or []:
        entry = str(raw).strip().strip("[]").lower().rstrip(".")
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry)
    return names, networks


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, NAT64, 6to4, Teredo)."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip in NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found


def address_problem(ip: IPAddress) -> str | None:
    """Why an address is not a public one ("loopback", "private", …), or None."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%")[0])
        for inner in _embedded_ipv4(ip):
            problem = address_problem(inner)
            if problem is not None:
                return problem
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("non-public", not ip.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def _address_allowed(
    ip: IPAddress, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def literal_address(host: str) -> IPAddress | None:
    """The address a host written as an IP literal means, in any spelling the system resolver
    accepts (inet_aton's decimal, octal, hex and short forms for IPv4); None for a name."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        pass
    if not text or not all(c in "0123456789abcdefx." for c in text.lower()):
        return None
    try:
        packed = socket.inet_aton(text)
    except OSError:
        return None
    return ipaddress.IPv4Address(packed)


def check_address(host: str, ip: IPAddress) -> None:
    """Refuse an address of `host` unless it is public or allowed by the setting."""
    names, networks = _allowed_entries()
    if host.lower().rstrip(".") in names or _address_allowed(ip, networks):
        return
    problem = address_problem(ip)
    if problem is not None:
        raise WebhookAddressRefused(
            f"webhook host {host!r} is {ip}, a {problem} address; webhooks go only to public "
            "addresses unless CLOSEOUT_WEBHOOK_ALLOWED_HOSTS names the host or its network"
        )


def _parts(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise InvalidInput(
            gettext_noop("webhook URL %(url)s is not http(s)"),
            details={"field": "url", "url": url},
            params={"url": repr(url)},
        )
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise InvalidInput(
            gettext_noop("webhook URL %(url)s has a bad port"),
            details={"field": "url", "url": url},
            params={"url": repr(url)},
        ) from exc
    if not host:
        raise InvalidInput(
            gettext_noop("webhook URL %(url)s has no host"),
            details={"field": "url", "url": url},
            params={"url": repr(url)},
        )
    return scheme, host, port or (443 if scheme == "https" else 80)


def resolve_checked(host: str, port: int) -> list[tuple[int, tuple[object, ...]]]:
    """(family, socket address) of every address `host` resolves to, each checked; raises
    WebhookAddressRefused when any of them is refused, OSError when the name does not
    resolve."""
    names, _networks = _allowed_entries()
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    checked: list[tuple[int, tuple[object, ...]]] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if host.lower().rstrip(".") not in names:
            check_address(host, ip)
        checked.append((family, tuple(sockaddr)))
    if not checked:
        raise WebhookAddressRefused(f"webhook host {host!r} has no IPv4 or IPv6 address")
    return checked


def webhook_url_check(url: str) -> None:
    """At creation: refuse a URL that is not http(s), or whose host is (or resolves to) an
    address webhooks may not reach. A name that does not resolve now is accepted; it is
    checked again at every delivery."""
    _scheme, host, port = _parts(url)
    try:
        literal = literal_address(host)
        if literal is not None:
            check_address(host, literal)
        else:
            resolve_checked(host, port)
    except WebhookAddressRefused as exc:
        raise InvalidInput(str(exc), details={"field": "url", "url": url}) from exc
    except (OSError, UnicodeError):
        return  # does not resolve from here now: checked again at each delivery


def webhook_url_target(url: str) -> tuple[str, int]:
    """At delivery: (host, port) of a URL whose scheme is allowed (its addresses are checked
    when the connection is opened, see `checked_connection`)."""
    _scheme, host, port = _parts(url)
    return host, port


def checked_connection(
    address: tuple[str, int],
    timeout: object = None,
    source_address: tuple[str, int] | None = None,
) -> socket.socket:
    """socket.create_connection that connects only to checked addresses of the host (what
    http.client calls to open its connection)."""
    host, port = address
    literal = literal_address(host)
    if literal is not None:
        check_address(host, literal)
        targets: list[tuple[int, tuple[object, ...]]] = [
            (
                socket.AF_INET6 if literal.version == 6 else socket.AF_INET,
                (str(literal), port),
            )
        ]
    else:
        targets = resolve_checked(host, port)
    error: OSError | None = None
    for family, sockaddr in targets:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if isinstance(timeout, int | float):
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        return sock
    assert error is not None  # noqa: S101 (targets is never empty)
    raise error
