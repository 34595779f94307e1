"""The key line at the bottom: every key with its word, shortened (never hidden) to fit.

Textual's Footer gives each key a fixed cell and cuts the row at 80 columns, which hid help
and quit; this line shortens the words first and drops the least used keys only as a last
resort, always keeping k (kill), ? (help) and q (quit).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from rich.segment import Segment

from tui.widgets.frame import Frame
from tui.widgets.lines import LinePane, Row
from tui.widgets.palette import Palette


@dataclass(frozen=True, slots=True)
class KeyEntry:
    key: str
    description: str
    short: str
    keep: int
    """Lower is kept longer when space runs out; 0 is never dropped."""
    danger: bool = False


class KeyBar(LinePane):
    """One row of keys; rebuilt only when the width changes."""

    def __init__(
        self, entries: Sequence[KeyEntry], palette: Palette, *, id: str | None = None
    ) -> None:
        super().__init__(palette, id=id)
        self.entries = list(entries)

    def key(self, frame: Frame) -> Hashable:
        return len(self.entries)

    def build(self, frame: Frame, width: int, height: int) -> list[Row]:
        p = self.palette
        entries = list(self.entries)
        # Words first, then short words, then short words packed tighter; only then the least
        # used keys go, one at a time.
        for use_short, gap in ((False, 3), (True, 3), (True, 2)):
            words = [e.short if use_short else e.description for e in entries]
            if sum(len(e.key) + len(w) + gap for e, w in zip(entries, words, strict=True)) <= width:
                break
        else:
            while True:
                words = [e.short for e in entries]
                length = sum(len(e.key) + len(w) + gap for e, w in zip(entries, words, strict=True))
                droppable = [e for e in entries if e.keep > 0]
                if length <= width or not droppable:
                    break
                drop = max(droppable, key=lambda e: e.keep)
                entries.remove(drop)
        row: Row = []
        for entry, word in zip(entries, words, strict=True):
            key_style = p.killed_badge if entry.danger else p.key
            if gap == 3:
                row.append(Segment(f" {entry.key} ", key_style))
                row.append(Segment(f"{word} ", p.critical if entry.danger else p.text))
            else:
                row.append(Segment(f" {entry.key}", key_style))
                row.append(Segment(f" {word}", p.critical if entry.danger else p.text))
        return [row]
