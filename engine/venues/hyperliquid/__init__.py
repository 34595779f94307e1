"""Hyperliquid, the client side: signing, the price and size grid, and (later) the venue."""
