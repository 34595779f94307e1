"""Risk alerts, newest first: when, how bad (in words and colour), which control, the value."""

from __future__ import annotations

from collections.abc import Hashable

from rich.segment import Segment

from engine.alerts import Alert, Severity
from tui.widgets import fmt
from tui.widgets.frame import Frame
from tui.widgets.lines import LinePane, Row

_TIME_W = 9
_SEVERITY_W = 9
_CONTROL_W = 18
_VALUE_HEADER = "value / limit"


def _number(value: float) -> str:
    return f"{value:,.2f}" if abs(value) < 1e6 else f"{value:,.0f}"


def _figure(alert: Alert) -> str:
    """'value / limit' of the alert, or '' when the control did not give one."""
    if alert.value is None:
        return ""
    if alert.threshold is None:
        return _number(alert.value)
    return f"{_number(alert.value)} / {_number(alert.threshold)}"


class AlertsPane(LinePane):
    """As many alerts as fit, one line each; the message is cut, never wrapped."""

    def key(self, frame: Frame) -> Hashable:
        alerts = frame.snapshot.alerts
        return (len(alerts), alerts[0] if alerts else None)

    def build(self, frame: Frame, width: int, height: int) -> list[Row]:
        p = self.palette
        shown = frame.snapshot.alerts[: max(0, height - 1)]
        figures = [_figure(alert) for alert in shown]
        # the value column only as wide as the widest value shown, and only on a wide pane
        value_w = max((len(f) for f in figures), default=0)
        value_w = max(value_w, len(_VALUE_HEADER)) + 2 if value_w and width >= 90 else 0
        # a narrow pane gives the control no column of its own: "control: what" shares one
        control_w = _CONTROL_W if width >= 64 else 0
        message_w = max(0, width - 1 - _TIME_W - _SEVERITY_W - control_w - value_w)
        header = f" {'time':<{_TIME_W}}{'severity':<{_SEVERITY_W}}"
        header += f"{'control':<{control_w}}{'what':<{message_w}}" if control_w else "what"
        if value_w:
            header += _VALUE_HEADER.rjust(value_w)
        rows: list[Row] = [[Segment(fmt.fit(header, width), p.muted)]]
        if not shown:
            rows.append([Segment(" no alerts", p.muted)])
            return rows
        styles = {Severity.INFO: p.info, Severity.WARNING: p.warning, Severity.CRITICAL: p.critical}
        for alert, figure in zip(shown, figures, strict=True):
            row: Row = [
                Segment(f" {fmt.clock(frame.alert_time_s(alert.ts_ns))} ", p.muted),
                Segment(f"{alert.severity.value:<{_SEVERITY_W}}", styles[alert.severity]),
            ]
            if control_w:
                row.append(Segment(fmt.fit(alert.control, control_w - 1) + " ", p.heading))
                message = alert.message
            else:
                message = f"{alert.control}: {alert.message}"
            row.append(Segment(fmt.fit_words(message, message_w).ljust(message_w), p.text))
            if value_w:
                row.append(Segment(figure.rjust(value_w), p.text))
            rows.append(row)
        return rows


class AlertLine(LinePane):
    """The newest alert on one line, for layouts and views with no alerts pane on screen:
    when, how bad, which control, what; and how many came before it today."""

    def key(self, frame: Frame) -> Hashable:
        alerts = frame.snapshot.alerts
        return (len(alerts), alerts[0] if alerts else None)

    def build(self, frame: Frame, width: int, height: int) -> list[Row]:
        p = self.palette
        alerts = frame.snapshot.alerts
        if not alerts:
            return [[Segment(fmt.fit(" alerts: none", width), p.muted)]]
        alert = alerts[0]
        styles = {Severity.INFO: p.info, Severity.WARNING: p.warning, Severity.CRITICAL: p.critical}
        head = f" {fmt.clock(frame.alert_time_s(alert.ts_ns))} "
        severity = f"{alert.severity.value.upper()} "
        control = f"{alert.control}: "
        more = f"  (+{len(alerts) - 1}, 4 lists them)" if len(alerts) > 1 else "  (4 lists them)"
        figure = _figure(alert)
        message = alert.message + (f" ({figure})" if figure else "")
        room = width - len(head) - len(severity) - len(control) - len(more)
        if room < 12:  # too narrow for the hint: the message first
            more = ""
            room = width - len(head) - len(severity) - len(control)
        return [
            [
                Segment(head, p.muted),
                Segment(severity, styles[alert.severity]),
                Segment(control, p.heading),
                Segment(fmt.fit_words(message, max(0, room)).ljust(max(0, room)), p.text),
                Segment(more, p.muted),
            ]
        ]
