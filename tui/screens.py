"""The console's modal screens: the key help (`?`) and the yes/no confirmation for risky keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    """Every key, what it does and what it sends to the engine."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="help.close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def __init__(self, entries: Sequence[tuple[str, str, str]]) -> None:
        """`entries`: (key, short description, what it does) for each binding."""
        super().__init__()
        self.entries = list(entries)

    def compose(self) -> ComposeResult:
        desc_w = max(len(description) for _, description, _ in self.entries)
        table = Text()
        for i, (key, description, detail) in enumerate(self.entries):
            if i:
                table.append("\n")
            table.append(f" {key:>3}  ", style="bold reverse")
            table.append(f"  {description:<{desc_w}}  ", style="bold")
            table.append(detail)
        with Vertical(id="help-box"):
            yield Static(Text("perpdesk keys", style="bold"), id="help-title")
            yield Static(table, id="help-table")
            yield Static(
                "The engine keeps running while this is open; k still kills.  escape or ? closes.",
                id="help-note",
            )

    def action_close(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A question that needs an explicit `y`; anything else (n, escape) says no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n", "answer(False)", "No", id="confirm.no"),
        Binding("escape", "answer(False)", "Cancel", id="confirm.cancel"),
    ]

    def __init__(self, title: str, body: str) -> None:
        super().__init__()
        self.title_text = title
        self.body_text = body

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(Text(self.title_text, style="bold"), id="confirm-title")
            yield Static(self.body_text, id="confirm-body", markup=False)
            yield Static("y  confirm      n / escape  cancel", id="confirm-keys")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
