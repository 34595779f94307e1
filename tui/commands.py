"""The command palette (ctrl+p): the operator's keys by name, `set NAME VALUE` and `save settings`.

Typing `set base` lists the settings that match with their current value and default;
`set base_spread_bps 7` offers the change, already checked: a bad value shows the config
file's one-line message under it, and choosing it anyway only repeats that message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.markup import escape

from engine.config import (
    ConfigError,
    TunableSetting,
    apply_setting,
    resolve_setting,
    setting_text,
    tunable_settings,
)

if TYPE_CHECKING:
    from tui.app import PerpdeskApp

SET = "set"
SAVE = "save settings"


class DeskCommands(Provider):
    """The palette's commands, each calling the app's own action."""

    @property
    def desk(self) -> PerpdeskApp:
        return cast("PerpdeskApp", self.app)

    def _commands(self) -> Iterator[tuple[str, str, Callable[[], Any]]]:
        """(name, help, callback): every key by its name, then `set` and `save settings`."""
        from tui.app import KEYS  # here, not at the top: tui.app imports this module

        app = self.desk
        for key in KEYS:
            shown = key.display or key.key
            yield (
                key.id.replace("_", "-"),
                f"{key.help} (key {shown})",
                getattr(app, f"action_{key.action}"),
            )
        yield (
            f"{SET} <setting> <value>",
            "change a strategy or risk setting now, e.g. set base_spread_bps 7; "
            f"kept after a restart only once you {SAVE}",
            app.prompt_setting,
        )
        yield (
            SAVE,
            "write the settings changed here into the config file, comments kept",
            app.action_save_settings,
        )

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(Content(name), callback, text=name, help=escape(help_text))

    async def search(self, query: str) -> Hits:
        words = query.split(maxsplit=2)
        if words and words[0].lower() == SET and (len(words) > 1 or query.endswith(" ")):
            for hit in self._set_hits(words[1:]):
                yield hit
            return
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(
                    score, matcher.highlight(name), callback, text=name, help=escape(help_text)
                )
        # a setting's name alone finds it too: `base` offers `set strategy.base_spread_bps`
        for tunable in tunable_settings():
            text = f"{SET} {tunable.name}"
            score = matcher.match(text)
            if score > 0:
                callback = partial(self.desk.prompt_setting, tunable.name)
                help_text = escape(self._now_and_default(tunable))
                yield Hit(score * 0.9, matcher.highlight(text), callback, text=text, help=help_text)

    def _set_hits(self, words: list[str]) -> Iterator[Hit]:
        """After `set`: the settings matching a name, or the change itself once a value is
        typed, checked as the config file would be."""
        app = self.desk
        name = words[0] if words else ""
        if len(words) > 1:
            value = words[1].strip()
            text = f"{SET} {name} {value}"
            try:
                changed = apply_setting(app.settings, name, value)
                section, field = resolve_setting(name)
            except ConfigError as err:
                help_text = "; ".join(err.problems)
            else:
                now = getattr(getattr(app.settings, section), field)
                new = getattr(getattr(changed, section), field)
                help_text = f"{section}.{field}: {setting_text(now)} -> {setting_text(new)}"
            callback = partial(app.set_setting, name, value)
            yield Hit(1.0, Content(text), callback, text=text, help=escape(help_text))
            return
        matcher = self.matcher(name)
        for tunable in tunable_settings():
            score = (
                1.0 if not name else max(matcher.match(tunable.name), matcher.match(tunable.field))
            )
            if score <= 0:
                continue
            shown = matcher.highlight(tunable.name) if name else Content(tunable.name)
            display = Content(f"{SET} ") + shown
            callback = partial(app.prompt_setting, tunable.name)
            help_text = escape(self._now_and_default(tunable))
            yield Hit(score, display, callback, text=f"{SET} {tunable.name}", help=help_text)

    def _now_and_default(self, tunable: TunableSetting) -> str:
        section, field = tunable.name.split(".")
        now = getattr(getattr(self.desk.settings, section), field)
        return (
            f"now {setting_text(now)}, default {setting_text(tunable.default)} "
            f"({tunable.kind}): {tunable.description}"
        )
