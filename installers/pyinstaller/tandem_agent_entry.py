"""Bundle entry point of ``tandem-agent`` (the console script in pyproject.toml calls the same main)."""

import sys

from agent_app.main import main

sys.exit(main())
