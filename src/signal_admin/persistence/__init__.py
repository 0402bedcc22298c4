"""Storage: SQLAlchemy models, sessions and transactions, queries, migrations."""
