"""The desktop's Qt widgets. They render `agent_app.view.DesktopView` and emit signals;
the rules live in the pure modules, the threading in `agent_app.bridge`."""

from agent_app.widgets.call_panel import CallPanel
from agent_app.widgets.login import LoginWidget
from agent_app.widgets.main_window import MainWindow

__all__ = ["CallPanel", "LoginWidget", "MainWindow"]
