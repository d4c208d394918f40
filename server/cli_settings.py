"""The settings a ``tandem-server`` command runs with: the config file (``--config`` or
``TANDEM_SERVER_CONFIG``) and ``--data-dir``, resolved as the server resolves them."""

from __future__ import annotations

import argparse
from pathlib import Path

from server.settings import Settings, load_settings


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    return load_settings(Path(args.config) if args.config else None, **overrides)
