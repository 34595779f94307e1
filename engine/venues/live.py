"""Venues for a live session, built from settings: the embedded exchange (built by the engine
itself) or Hyperliquid (mainnet, testnet or the local exchange), connected and started here."""

from __future__ import annotations

from engine.config import ConfigError, Settings, hyperliquid_coin, venue_urls
from engine.live import VenueUnavailable
from engine.venues.hyperliquid.credentials import CredentialsError, load_signer
from engine.venues.hyperliquid.venue import HyperliquidVenue, VenueError


def check_live_venue(settings: Settings) -> None:
    """Refuse, before anything starts, a network venue we cannot run as configured."""
    venue = settings.venue
    if venue.name == "purpleflea":
        raise VenueUnavailable('venue.name = "purpleflea": not available yet; use "sim" or '
                               '"hyperliquid"')  # fmt: skip
    if venue.name != "hyperliquid":
        return
    try:
        hyperliquid_coin(settings.strategy.symbol)
        load_signer(venue)
    except (ConfigError, CredentialsError) as err:
        raise VenueUnavailable(str(err).strip().splitlines()[0]) from None


async def open_hyperliquid(settings: Settings) -> HyperliquidVenue:
    """Connect to Hyperliquid as configured: the instrument, the first book, our position."""
    check_live_venue(settings)
    venue = settings.venue
    http_url, ws_url = venue_urls(venue)
    if venue.account_address is None:  # check_live_venue refused it already
        raise VenueUnavailable("venue.account_address is not set")
    hl = HyperliquidVenue(
        http_url,
        ws_url,
        load_signer(venue),
        venue.account_address,
        hyperliquid_coin(settings.strategy.symbol),
        mainnet=venue.network == "mainnet",
        network=venue.network,
        slippage_bps=venue.slippage_bps,
        dead_mans_switch_s=venue.dead_mans_switch_s,
    )
    try:
        await hl.start()
    except (VenueError, OSError, TimeoutError) as err:
        await hl.close()
        raise VenueUnavailable(f"{venue.network} at {http_url}: {err}") from None
    return hl
