"""Risk alerts: what tripped, how bad, the value that tripped it and the limit it crossed."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


@dataclass(frozen=True, slots=True)
class Alert:
    ts_ns: int
    severity: Severity
    control: str
    """Which control spoke: 'daily loss', 'position cap', 'vol breaker', 'rate limit', ..."""
    message: str
    value: float | None = None
    threshold: float | None = None
