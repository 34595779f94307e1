"""Replays of recorded venue data through the same core: tape readers and a fill model."""
