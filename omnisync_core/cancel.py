"""Cooperative cancellation: long loops call ``check(cancelled)`` between units of work."""

from __future__ import annotations

from collections.abc import Callable


class Cancelled(Exception):
    """Raised inside a long loop when the caller's ``cancelled()`` returns True."""


def check(cancelled: Callable[[], bool] | None) -> None:
    if cancelled is not None and cancelled():
        raise Cancelled("cancelled by the user")
