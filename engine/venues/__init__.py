"""Venues: where the core's actions go and its events come from."""
