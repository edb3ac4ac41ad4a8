"""What the app keeps of a client, and no more: its network (the address with its host part dropped) and
its device in plain words ("Chrome on Linux"), never the full address nor the full User-Agent string
(docs/privacy.md). The access log keeps the network; a session (dashboard/sessions.py) both."""

from __future__ import annotations

import ipaddress
import re

DEVICE_MAX = 80  # the column's length (schema_features.UserSession.device)

# (pattern, name), first match wins: Edge, Opera and Samsung Internet carry "Chrome/" and "Safari/" too,
# Chrome carries "Safari/", so the specific ones come first
_BROWSERS = (
    (r"Edg(?:e|A|iOS)?/", "Edge"),
    (r"OPR/|Opera", "Opera"),
    (r"SamsungBrowser/", "Samsung Internet"),
    (r"Firefox/|FxiOS/", "Firefox"),
    (r"Chrome/|Chromium/|CriOS/", "Chrome"),
    (r"Version/[\d.]+.*Safari/", "Safari"),
)
_SYSTEMS = (
    (r"iPhone|iPad|iPod", "iOS"),
    (r"Android", "Android"),
    (r"CrOS", "ChromeOS"),
    (r"Windows", "Windows"),
    (r"Mac OS X|Macintosh", "macOS"),
    (r"Linux|X11", "Linux"),
)
_PROGRAM = re.compile(r"^([A-Za-z][\w.-]{0,40})/")  # "python-requests/2.32" -> python-requests


def truncate_address(address: str | None) -> str | None:
    """A client address with its host part dropped: IPv4 to its /24, IPv6 to its /48 (an IPv4-mapped IPv6
    address as IPv4). Unparsable input gives None, never an error."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def describe_user_agent(user_agent: str | None) -> str:
    """A User-Agent header as a person reads it: "Firefox on Windows", "Safari on iOS", or for a program
    "API client (curl)"; "Unknown device" when nothing is recognised. Only this is stored."""
    text = (user_agent or "").strip()[:512]
    browser = next((name for pattern, name in _BROWSERS if re.search(pattern, text)), None)
    system = next((name for pattern, name in _SYSTEMS if re.search(pattern, text)), None)
    if browser and text.startswith("Mozilla/"):
        return f"{browser} on {system}" if system else browser
    if text.startswith("Mozilla/"):
        return f"A browser on {system}" if system else "A browser"
    program = _PROGRAM.match(text)
    if program:
        return f"API client ({program.group(1)})"[:DEVICE_MAX]
    return "Unknown device"
