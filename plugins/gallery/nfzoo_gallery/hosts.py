"""Host names and bind addresses (no torch, no fastapi: `nfzoo serve` checks its --host before importing them)."""
from __future__ import annotations

import ipaddress

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def host_name(value: str) -> str:
    """The host of a Host header or URL authority, without its port: "[::1]:8000" -> "::1",
    "LocalHost:80" -> "localhost"."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def is_loopback(host: str) -> bool:
    """Whether a bind address is this machine's loopback only (127.0.0.0/8, ::1, localhost)."""
    host = host_name(host) if host.startswith("[") else host.strip().lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
