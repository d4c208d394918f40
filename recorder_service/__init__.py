"""Tandem screen recorder service: follows the agent's event channel, captures the screen in
server time into a crash-safe spool, and uploads finished captures. Entry point: ``main``."""
