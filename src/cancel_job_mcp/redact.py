"""Secrets that ride in URLs, removed from every text we show and every log line.

A URL can carry a credential in its user information (`http://admin:pw@host`, as a `RAY_ADDRESS` or a
provider's address may) or in its query string (`?access_token=...`, which some clients send instead
of an Authorization header, and which an access log would otherwise write down). `without_url_secrets`
removes the first and blanks the second; every `ToolError` text passes through it, and so does every
log record once `install` has put its filter on the handlers.
"""

from __future__ import annotations

import logging
import re

HIDDEN = "[redacted]"
_USERINFO = re.compile(r"(?<=://)[^\s/?#@\"'<>]*@")
_QUERY_SECRET = re.compile(
    r"(?<=[?&;])((?:access_?token|token|api_?key|key|secret|password|passwd|auth|code|sig|signature)=)"
    r"[^&;#\s\"']*",
    re.IGNORECASE,
)


def without_url_secrets(text: str) -> str:
    """`text` with every URL's user information removed and query-string credentials blanked."""
    if "@" in text:
        text = _USERINFO.sub("", text)
    if "=" in text:
        text = _QUERY_SECRET.sub(rf"\1{HIDDEN}", text)
    return text


class UrlSecretsFilter(logging.Filter):
    """Rewrites each record's message (and traceback) without URL secrets; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken format string: logging reports it, without our help
            return True
        cleaned = without_url_secrets(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = without_url_secrets(record.exc_text)
        return True


def install(logger: logging.Logger) -> None:
    """Put the filter on each of the logger's handlers (records of every logger that propagates there)."""
    for handler in logger.handlers:
        if not any(isinstance(existing, UrlSecretsFilter) for existing in handler.filters):
            handler.addFilter(UrlSecretsFilter())
