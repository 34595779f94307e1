"""The Line API pane every console widget is built on: rows of segments, dirty rows repainted.

A pane turns a `Frame` into a list of rows (each a list of Rich `Segment`s), and only when
its inputs changed. `set_rows` compares the new rows with the old ones and refreshes just the
rows that differ; `render_line` converts a row to a `Strip` once and caches it until the row,
the width or the theme changes. A quiet frame therefore costs a comparison, not a repaint.
"""

from __future__ import annotations

from collections.abc import Hashable

from rich.segment import Segment
from rich.style import Style
from textual.events import Resize
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from tui.widgets.frame import Frame
from tui.widgets.palette import Palette

Row = list[Segment]


class LinePane(Widget):
    """A fixed grid of text rows drawn with the Line API; subclasses implement `build`."""

    DEFAULT_CSS = """
    LinePane {
        height: auto;
    }
    """

    def __init__(
        self, palette: Palette, *, title: str | None = None, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.palette = palette
        self._rows: list[Row] = []
        self._strips: dict[int, Strip] = {}
        self._strip_width = -1
        self._base_style: Style | None = None
        """The pane's own colours under every row; reading `rich_style` walks the DOM, so it
        is read once and kept until the pane's styles change."""
        self._key: Hashable = None
        self._frame: Frame | None = None
        if title is not None:
            self.border_title = title

    # ---- what subclasses write ----------------------------------------------------------------

    def key(self, frame: Frame) -> Hashable:
        """What the rows depend on; rows are rebuilt only when it changes. Default: always."""
        return object()

    def build(self, frame: Frame, width: int, height: int) -> list[Row]:
        raise NotImplementedError

    # ---- driving ------------------------------------------------------------------------------

    def show(self, frame: Frame) -> None:
        """Rebuild the rows from `frame` if anything they depend on changed."""
        self._frame = frame
        width, height = self.size
        if width <= 0 or height <= 0:
            return
        key = (self.key(frame), width, height)
        if key == self._key:
            return
        self._key = key
        self.set_rows(self.build(frame, width, height))

    def restyle(self, palette: Palette) -> None:
        """A new theme: repaint every row in the new colours."""
        self.palette = palette
        self._key = None
        self._rows = []
        self._strips.clear()
        if self._frame is not None:
            self.show(self._frame)
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._base_style = None
        self._strips.clear()
        self.refresh()

    def on_resize(self, event: Resize) -> None:
        self._key = None
        self._strips.clear()
        if self._frame is not None:
            self.show(self._frame)

    def set_rows(self, rows: list[Row]) -> None:
        old = self._rows
        self._rows = rows
        width = self.size.width
        strips = self._strips
        n_old, n_new = len(old), len(rows)
        for y in range(max(n_old, n_new)):
            if y < n_old and y < n_new and old[y] == rows[y]:
                continue
            strips.pop(y, None)
            self.refresh(Region(0, y, width, 1))

    @property
    def rows_text(self) -> list[str]:
        """The plain text of each row (for tests and for reading the screen)."""
        return ["".join(segment.text for segment in row) for row in self._rows]

    # ---- the Line API -------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if width != self._strip_width:
            self._strips.clear()
            self._strip_width = width
        strip = self._strips.get(y)
        if strip is None:
            base = self._base_style
            if base is None:
                base = self._base_style = self.rich_style
            row = self._rows[y] if y < len(self._rows) else []
            strip = Strip(row).adjust_cell_length(width).apply_style(base)
            self._strips[y] = strip
        return strip


def seg(text: str, style: Style | None = None) -> Segment:
    return Segment(text, style)


def rule_row(width: int, style: Style, label: str = "") -> Row:
    if not label:
        return [Segment("─" * width, style)]
    return [Segment(f"── {label} " + "─" * max(0, width - len(label) - 4), style)]
