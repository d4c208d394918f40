"""Tandem agent desktop (PySide6): login, agent state, the current call, secure pause, ACW/Done.

Pure logic in `model`, `view`, `validation`; network in `api_client`, `event_channel`; the one
Qt helper in `bridge`; widgets in `widgets`. Entry point: `agent_app.main:main` (tandem-agent).
"""
