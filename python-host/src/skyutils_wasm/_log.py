"""Loggers created on first use: importing :mod:`logging` costs a few
milliseconds, and most processes never log from here."""

from __future__ import annotations

from typing import Any


def get(name: str) -> Any:
    """``logging.getLogger(name)``, importing :mod:`logging` on first use."""
    import logging

    return logging.getLogger(name)
