"""The experiment store: SQLModel tables (schema owned by Alembic), sessions and queries."""
