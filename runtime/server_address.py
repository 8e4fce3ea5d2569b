"""Which Temporal server a runtime command talks to, and where its Web UI is.

With no address configured (no --address, no TEMPORAL_ADDRESS) the commands use the dev server
this directory started (`runtime.devserver`); `iterloop run` starts it when it is not running.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable

from runtime.command_errors import UsageError
from runtime.settings import Settings


def is_loopback_host(host: str) -> bool:
    """`localhost`, `::1` (bracketed or not) or any 127.x.y.z address: only this machine can reach it."""
    bare = host.strip().lower().strip("[]")
    if bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:  # a host name such as 127.example.com is not a loopback address
        return False


def is_local_address(address: str) -> bool:
    """Whether a Temporal `host:port` address (or a bare host) is on this machine."""
    text = address.strip()
    if text.startswith("["):  # [::1]:7233
        host = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # localhost:7233
        host = text.partition(":")[0]
    else:  # a bare host, or a bare IPv6 address
        host = text
    return is_loopback_host(host)


def settings_for_existing_runs(settings: Settings) -> Settings:
    """With no address configured, the dev server this directory started (if it runs) is the one to ask."""
    if settings.address_configured:
        return settings
    from runtime import devserver

    current = devserver.status(settings)
    if current.state == "running" and current.server is not None:
        return settings.with_overrides(address=current.server.address)
    return settings


def web_ui_base(settings: Settings) -> str:
    """Where the Temporal Web UI is: ITERLOOP_TEMPORAL_UI_URL when set, else the dev server's UI, else
    the same host on ``settings.ui_port``."""
    if settings.ui_url:
        return settings.ui_url
    if not settings.address_configured or is_local_address(settings.address):
        from runtime import devserver

        current = devserver.status(settings)
        server = current.server
        same_port = server is not None and server.address.rpartition(":")[2] == settings.address.rpartition(":")[2]
        if server is not None and server.ui_url and (same_port or not settings.address_configured):
            return server.ui_url.rstrip("/")
        return f"http://localhost:{settings.ui_port}"
    host = settings.address.rpartition(":")[0] or settings.address
    return f"http://{host}:{settings.ui_port}"


def web_ui_link(settings: Settings, run_id: str) -> str:
    from urllib.parse import quote

    return f"{web_ui_base(settings)}/namespaces/{quote(settings.namespace)}/workflows/{quote(run_id, safe='')}"


async def server_for_run(settings: Settings, say: Callable[[str], None]) -> Settings:
    """With no address configured, the local dev server (started here if it is not running); ``say``
    tells the user which one."""
    if settings.address_configured:
        return settings
    from runtime import devserver

    try:
        info = await asyncio.to_thread(devserver.ensure_running, settings)
    except devserver.DevServerError as exc:
        raise UsageError(f"cannot start the local Temporal dev server: {exc}") from None
    say(f"using the local Temporal dev server at {info.address}" + (f" (Web UI {info.ui_url})" if info.ui_url else ""))
    return settings.with_overrides(address=info.address)
