"""The database schema's tables, in modules by domain (SQLAlchemy 2 declarative classes on one
``Base.metadata``).

Code imports them through `server.store.models`, the schema's public surface: it names every
table and registers the mapper events that keep the search keys (`server.store.search_columns`),
which a class imported from here directly would write without. These modules import nothing of
ours but each other, so `server.store` may depend on this package and not the reverse.
"""
