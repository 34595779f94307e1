"""The console's panes, each a Line API widget that draws one part of an engine snapshot."""

from tui.widgets.alerts import AlertLine, AlertsPane
from tui.widgets.blotter import AlertsLog, BlotterView
from tui.widgets.charts import SessionCharts
from tui.widgets.frame import Frame
from tui.widgets.inventory import InventoryGauge
from tui.widgets.keybar import KeyBar, KeyEntry
from tui.widgets.ladder import Ladder
from tui.widgets.lines import LinePane
from tui.widgets.palette import Palette
from tui.widgets.pnl import PnlPane
from tui.widgets.quotes import QuotesPane
from tui.widgets.spread import SpreadPane
from tui.widgets.status import KillBanner, StatusBar

__all__ = [
    "AlertLine",
    "AlertsLog",
    "AlertsPane",
    "BlotterView",
    "Frame",
    "InventoryGauge",
    "KeyBar",
    "KeyEntry",
    "KillBanner",
    "Ladder",
    "LinePane",
    "Palette",
    "PnlPane",
    "QuotesPane",
    "SessionCharts",
    "SpreadPane",
    "StatusBar",
]
