"""Alembic migration scripts, shipped inside the installed package (see core/store/migrate.py)."""
