"""Voice load benchmark: SIPp SIPREC calls against a real server (see run.py)."""
