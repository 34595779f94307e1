"""What one screen frame shows: the engine's snapshot plus the live shell's loop facts."""

from __future__ import annotations

from dataclasses import dataclass

from engine.history import HistoryView
from engine.snapshot import EngineSnapshot


@dataclass(frozen=True, slots=True)
class Frame:
    """Everything the panes read; built by the app from the engine, never computed by panes."""

    snapshot: EngineSnapshot
    venue: str
    wall_time_s: float
    """Unix time of the snapshot (sim time mapped to the wall clock)."""
    epoch_s: float
    sim0_ns: int
    """Unix time `epoch_s` is sim time `sim0_ns`: stamps alerts with the wall clock."""
    speed: float
    lag_p99_ms: float
    events_per_s: float
    stale_feed_s: float
    api_warn_pct: float
    price_decimals: int
    size_decimals: int
    base_asset: str
    stopping: bool = False
    network: str = ""
    """A network venue's network (mainnet, testnet, local); "" on the embedded exchange."""
    account: str = ""
    """The account traded at a network venue (its address)."""
    switch: str | None = None
    """A network venue's dead man's switch state; None where there is none."""
    history: HistoryView | None = None
    """The session's net P&L, inventory and spread terms, downsampled (the session charts)."""

    def alert_time_s(self, ts_ns: int) -> float:
        return self.epoch_s + (ts_ns - self.sim0_ns) / 1e9 / self.speed
