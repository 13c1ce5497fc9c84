"""Logging: secrets never reach the logs; text or JSON lines.

Some clients must put credentials in a URL (e.g. a callback URL with an API key). The access
log would print them; :class:`RedactSecrets` replaces such query values with ``***``. It also
writes control characters as escapes (``\x1b``): text a client sent (a path, a user name) can
neither start a forged line nor send a terminal escape sequence to whoever reads the log.

:func:`server_log_config` is the server's logging configuration: uvicorn's own (text, with its
access log) or one JSON object per line (``--log-format json``: the request lines are written
by :mod:`sessionscope.api.metrics`, every other record by :class:`JsonFormatter`).
"""

from __future__ import annotations

import copy
import json
import logging
import queue
import re
import sys
import threading
import time
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from uvicorn.logging import AccessFormatter

__all__ = [
    "SENSITIVE_PARAMS",
    "AccessLines",
    "BackgroundStreamHandler",
    "JsonFormatter",
    "RedactSecrets",
    "install_redaction",
    "lighten_records",
    "printable",
    "redact",
    "server_log_config",
]

SENSITIVE_PARAMS = ("apikey", "api_key", "key", "token", "secret", "signature", "password")
_PATTERN = re.compile(
    r"(?i)([?&](?:" + "|".join(re.escape(p) for p in SENSITIVE_PARAMS) + r")=)[^&\s\"]*"
)
#: A percent-escape of a character that can spell a parameter's name or a URL's delimiters
#: (or of ``%`` itself, for text encoded twice). Only these are decoded: a quote, a space or a
#: control character stays encoded, so a decoded URL cannot forge a log line (``%0A``) or
#: close the access log's quoted request (``%22``).
_SAFE_ESCAPE = re.compile(r"%(?:[46][1-9A-Fa-f]|[57][0-9Aa]|3[0-9ADFadf]|2[56DEFdef]|5[Ff])")
#: How many layers of encoding are decoded (a URL inside a URL's parameter, and so on).
_DECODE_ROUNDS = 4


def _decode_safe(text: str) -> str:
    for _ in range(_DECODE_ROUNDS):
        decoded = _SAFE_ESCAPE.sub(lambda m: chr(int(m.group()[1:], 16)), text)
        if decoded == text:
            break
        text = decoded
    return text


#: Control characters (C0, DEL, C1), written as ``\xNN`` escapes in log text, and the two
#: Unicode separators some readers also take for a line's end (``str.splitlines`` does).
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))} | {
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def printable(text: str) -> str:
    """``text`` with its control characters written as escapes (``\\n`` becomes ``\\x0a``)."""
    return text if text.isprintable() else text.translate(_CONTROLS)


def redact(text: str) -> str:
    """Replace the values of sensitive query parameters in a URL or path.

    Percent-escapes of letters, digits and URL delimiters are decoded first, so an encoded
    parameter name, or a URL carried encoded in another's parameter, cannot slip through.
    """
    if "=" not in text and "%" not in text:  # no parameter value (most log arguments)
        return text
    if "%" in text:
        text = _decode_safe(text)
    return _PATTERN.sub(r"\1***", text)


class RedactSecrets(logging.Filter):
    """Redact sensitive query parameters from a record's message and arguments, and write
    their control characters as escapes (an exception given as an argument included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _scrub(str(a)) if isinstance(a, str | BaseException) else a for a in record.args
            )
        if isinstance(record.msg, str):  # a line's own end stays (uvicorn ends some so)
            record.msg = _scrub(record.msg.removesuffix("\n"))
        return True


def _scrub(text: str) -> str:
    """What a log may say of ``text``: its secrets redacted, its control characters escaped."""
    return printable(redact(text))


def install_redaction() -> None:
    """Attach the filter to the access and error loggers and to the handlers of the
    ``uvicorn`` and ``sessionscope`` loggers (once each). A logger's filter sees only the
    records logged on that very logger, not those of its children (``sessionscope.api.errors``);
    a handler's sees every record it writes (``serve`` gives ``sessionscope`` one:
    :func:`server_log_config`)."""
    for name in ("uvicorn.access", "uvicorn.error", "uvicorn", "sessionscope"):
        logger = logging.getLogger(name)
        for holder in (logger, *logger.handlers):
            if not any(isinstance(f, RedactSecrets) for f in holder.filters):
                holder.addFilter(RedactSecrets())


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (request lines, already JSON
    objects, are written as they are)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.name == "sessionscope.access":
            return message
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(message),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, separators=(",", ":"))


#: How long the log writer lets lines gather before it writes them.
LINGER_S = 0.02


class BackgroundStreamHandler(logging.Handler):
    """A stream handler whose writes happen on a thread of its own.

    A record is queued as it is; a writer thread drains the queue, formats the records and
    writes their lines at once, at most every ``LINGER_S``. The event loop never blocks in a
    ``write`` call: each blocking write releases the GIL, and getting it back behind the
    server's busy threads cost about a third of the throughput of single-event ingest at 8
    clients (measured in ``docs/performance.md``). Lines are flushed when the queue is empty
    and on :meth:`close`, which :mod:`logging` calls at exit.
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__()
        self.stream: IO[str] = stream if stream is not None else sys.stderr
        self._lines: queue.SimpleQueue[logging.LogRecord | str | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, name="log-writer", daemon=True)
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        # Formatted by the writer thread: the arguments of the records logged here (uvicorn's
        # request lines, our own messages) are immutable values.
        self._lines.put(record)

    def put_line(self, line: str) -> None:
        """Write ``line`` (formatted already, ending with a newline) with the records."""
        self._lines.put(line)

    def _write(self) -> None:
        while True:
            record = self._lines.get()
            if record is not None:
                # Let lines gather: one wake-up of this thread (and one turn of the interpreter
                # lock) for every line would cost the server's threads more than the lines.
                time.sleep(LINGER_S)
            lines: list[str] = []
            while record is not None:
                if isinstance(record, str):
                    lines.append(record)
                else:
                    try:
                        lines.append(self.format(record) + "\n")
                    except Exception:
                        self.handleError(record)
                try:
                    record = self._lines.get_nowait()
                except queue.Empty:
                    break
            if lines:
                try:
                    self.stream.write("".join(lines))
                    self.stream.flush()
                except Exception:  # a closed or broken stream: drop the lines, keep serving
                    pass
            if record is None:
                return

    def close(self) -> None:
        if self._writer.is_alive():
            self._lines.put(None)
            self._writer.join(timeout=5)
        super().close()


#: uvicorn's access line (its ``LOGGING_CONFIG``), the one :class:`AccessLines` writes itself.
_ACCESS_FORMAT = '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'


class AccessLines:
    """uvicorn's access log lines, written by the app (``serve`` turns uvicorn's own off).

    uvicorn logs each request through :mod:`logging`: a record, the redaction filter, the
    handler, and the formatting in the log writer's thread, about 21 µs of the interpreter
    lock per request, and single-event ingest at 8 clients answered 17% more requests without
    the access log (docs/performance.md). Where the access logger is as ``serve`` configures it
    (INFO, one :class:`BackgroundStreamHandler`, uvicorn's format without colours), the same
    line is built here in one string, its path redacted (:func:`redact`), and queued to that
    handler. Otherwise (colours on a terminal, another configuration) it goes through
    :mod:`logging` as uvicorn would log it.
    """

    def __init__(self) -> None:
        from uvicorn.protocols.utils import get_client_addr

        self._client_address = get_client_addr
        self.logger = logging.getLogger("uvicorn.access")
        #: The handler lines are queued to, once looked up (False: log through ``logger``).
        self._handler: BackgroundStreamHandler | bool | None = None

    def write(self, scope: Any, status: int) -> None:
        """The line of a request answered ``status``."""
        handler = self._handler
        if handler is None:
            handler = self._handler = self._fast_handler()
        address = self._client_address(scope)
        # uvicorn's ``get_path_with_query_string``, except that a scope of another server
        # (no ``raw_path``) or a query that is not ASCII does not raise.
        raw = scope.get("raw_path")
        path = raw.decode("latin1") if raw else scope.get("path", "")
        if query := scope.get("query_string"):
            path = f"{path}?{query.decode('ascii', 'replace')}"
        path = path.replace('"', "%22")
        if isinstance(handler, BackgroundStreamHandler):
            formatter: AccessFormatter = handler.formatter  # type: ignore[assignment]
            handler.put_line(
                f'INFO:     {address} - "{scope["method"]} {redact(path)} '
                f'HTTP/{scope["http_version"]}" {formatter.get_status_code(status)}\n'
            )
        elif self.logger.isEnabledFor(logging.INFO):
            self.logger.info(
                '%s - "%s %s HTTP/%s" %d',
                address,
                scope["method"],
                path,
                scope["http_version"],
                status,
            )

    def _fast_handler(self) -> BackgroundStreamHandler | bool:
        from uvicorn.logging import AccessFormatter

        logger = self.logger
        handlers = logger.handlers
        if (
            logger.getEffectiveLevel() == logging.INFO
            and len(handlers) == 1
            and isinstance(handlers[0], BackgroundStreamHandler)
            and handlers[0].level <= logging.INFO
            and not handlers[0].filters
            and type(handlers[0].formatter) is AccessFormatter
            and not handlers[0].formatter.use_colors
            and handlers[0].formatter._fmt == _ACCESS_FORMAT
            and all(isinstance(f, RedactSecrets) for f in logger.filters)
        ):
            return handlers[0]
        return False


def lighten_records() -> None:
    """Leave out of every log record of this process what none of the server's formats shows:
    the calling function's file and line (a walk up the stack for every access log line), the
    thread and the process (the "Optimization" table of the ``logging`` documentation)."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def server_log_config(log_format: str) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of ``sessionscope serve`` for ``log_format``."""
    from uvicorn.config import LOGGING_CONFIG

    background = f"{__name__}.BackgroundStreamHandler"
    if log_format != "json":
        config = copy.deepcopy(LOGGING_CONFIG)
        for handler in config["handlers"].values():
            handler["class"] = background
        # The app's own records as uvicorn's ("WARNING:  ..."), through a handler of the
        # config (``install_redaction`` filters it), not Python's last-resort one.
        config["loggers"]["sessionscope"] = {
            "handlers": ["default"],
            "level": "INFO",
            "propagate": False,
        }
        return config
    handler = {"class": background, "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": handler},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            # Replaced by the JSON request lines.
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "sessionscope": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }
