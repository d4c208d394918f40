"""Speed benchmarks: scripts that print figures (see README.md); not part of the test suite."""
