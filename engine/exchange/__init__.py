"""The local exchange server: a loopback server speaking Hyperliquid's API."""
