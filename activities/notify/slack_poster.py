"""Posting to Slack with `slack_sdk`'s async Web API client, failures sorted into retry or not.

Slack answers HTTP 200 with `{"ok": false, "error": "…"}` for most failures and HTTP 429 with a
`Retry-After` header when rate limited; the client raises `SlackApiError` for both. Rate limits,
Slack's own outages (its error codes, or an HTTP status `NOTIFY_FAILURES` retries) and network
errors are `Transient`; anything else (a revoked token, a channel the bot is not in, a missing
scope) is `Permanent`, with a message that says what to fix.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from activities.http_errors import NOTIFY_FAILURES
from activities.http_retry import retry_delay_from_headers
from activities.notify.errors import DeliveryError, Permanent, Transient

#: Slack error codes worth retrying (https://api.slack.com/methods/chat.postMessage#errors).
TRANSIENT_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                              "request_timeout"})
_HINTS = {
    "invalid_auth": "the bot token is not valid: check ITERLOOP_SLACK_BOT_TOKEN on the worker",
    "not_authed": "no bot token was sent: set ITERLOOP_SLACK_BOT_TOKEN on the worker",
    "token_revoked": "the bot token was revoked: install the app again and update ITERLOOP_SLACK_BOT_TOKEN",
    "account_inactive": "the bot's workspace account is inactive: reinstall the app",
    "channel_not_found": "no such channel, or the bot cannot see it: check the channel name and invite the bot",
    "not_in_channel": "the bot is not a member of the channel: `/invite @your-bot` there",
    "is_archived": "the channel is archived: choose another channel",
    "missing_scope": "the bot token lacks the chat:write scope: add it in the app's OAuth settings",
    "invalid_blocks": "Slack refused the message layout (invalid_blocks): please report this as an iterloop bug",
}


class SlackPoster:
    """Posts messages with one bot token against one Web API base URL."""

    def __init__(self, token: str, base_url: str, *, timeout_seconds: float = 10.0) -> None:
        # The client adds method names to the base URL, which therefore must end with a slash.
        self.client = AsyncWebClient(token=token, base_url=base_url.rstrip("/") + "/", timeout=int(timeout_seconds))

    async def post(self, target: str, channel: str, text: str, blocks: list[dict[str, Any]]) -> str:
        """Post; return `channel_id/ts`, the message's address (kept to update it later)."""
        try:
            response = await self.client.chat_postMessage(channel=channel, text=text, blocks=blocks,
                                                          unfurl_links=False, unfurl_media=False)
        except SlackApiError as err:
            raise slack_failure(target, err) from None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
            raise Transient(target, f"Slack could not be reached ({type(err).__name__}: {err})") from None
        return f"{response.get('channel') or channel}/{response.get('ts')}"


def slack_failure(target: str, err: SlackApiError) -> DeliveryError:
    """Sort Slack's refusal: retry what may pass (its delay from the headers), else say what to fix."""
    response = err.response
    status = getattr(response, "status_code", 0) or 0
    data = getattr(response, "data", None)
    code = str(data.get("error", "")) if isinstance(data, dict) else ""
    if code in TRANSIENT_ERRORS or (status >= 400 and NOTIFY_FAILURES.retryable(status)):
        headers = getattr(response, "headers", None) or {}
        delay = retry_delay_from_headers(headers)
        return Transient(target, f"Slack answered {code or f'HTTP {status}'}", retry_after=delay)
    hint = _HINTS.get(code, f"Slack refused the message: {code or f'HTTP {status}'}")
    return Permanent(target, f"{hint} (error {code})" if code and code in _HINTS else hint)

