"""Use cases: the business rules every door (web, API, CLI) goes through.

Each module is one use case. A service takes a SQLAlchemy ``Session`` and an ``Actor``, checks
its rules, changes the database and writes the audit record itself, so a change made from the
CLI is checked and audited exactly like the same change from the web. Refusals are
``server.errors.DomainError`` subclasses; the API maps them to HTTP in one place
(``server.api.errors``), the CLI to ``error: …`` and exit status 1. No FastAPI here.
"""
