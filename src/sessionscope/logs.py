"""Logging hygiene: secrets never reach the logs.

Some clients must put credentials in a URL (e.g. a callback URL with an API key). The access
log would print them; :class:`RedactSecrets` replaces such query values with ``***``.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

__all__ = ["SENSITIVE_PARAMS", "RedactSecrets", "install_redaction", "redact"]

SENSITIVE_PARAMS = ("apikey", "api_key", "key", "token", "secret", "signature", "password")
_PATTERN = re.compile(
    r"(?i)([?&](?:" + "|".join(re.escape(p) for p in SENSITIVE_PARAMS) + r")=)[^&\s\"]*"
)


def redact(text: str) -> str:
    """Replace the values of sensitive query parameters in a URL or path.

    Percent-encoded text is decoded first, so an encoded parameter name cannot slip through.
    """
    if "%" in text:
        text = unquote(text)
    return _PATTERN.sub(r"\1***", text)


class RedactSecrets(logging.Filter):
    """Redact sensitive query parameters from a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install_redaction() -> None:
    """Attach the filter to the access and error loggers (once)."""
    for name in ("uvicorn.access", "uvicorn.error", "sessionscope"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
