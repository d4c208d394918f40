"""Bundle entry point of ``tandem-recorder`` (the console script in pyproject.toml calls the same main)."""

import sys

from recorder_service.main import main

sys.exit(main())
