"""Structured logs: one JSON object per line on stderr, with the request id and the actor's id bound to every line
of a request, and personal values (emails, phone and ID numbers) cut out of messages and tracebacks before they
are written, so a log file can be shipped to a log store without becoming a second customer database."""

import re

import structlog

# Emails; runs of 11+ digits (mobile and E.164 numbers, resident ID numbers), not inside hex ids.
_PERSONAL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|(?<![0-9A-Za-z])\+?\d{11,}[\dXx]?(?![0-9A-Za-z])")
_REDACTED_KEYS = ("event", "exception")


def redact_personal(logger, method_name: str, event_dict: dict) -> dict:
    for key in _REDACTED_KEYS:
        if isinstance(event_dict.get(key), str):
            event_dict[key] = _PERSONAL.sub("[redacted]", event_dict[key])
    return event_dict


_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def logging_config(*, level: str, json: bool) -> dict:
    """The LOGGING setting: every logger (Django's, libraries', ours) through structlog's formatter."""
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer = structlog.processors.JSONRenderer(ensure_ascii=False) if json else structlog.dev.ConsoleRenderer()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "foreign_pre_chain": _SHARED,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    redact_personal,
                    renderer,
                ],
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        # One line per request (route, status, time): the access log, with ids and no query strings.
        "loggers": {"cim.request": {"level": "INFO"}},
    }
