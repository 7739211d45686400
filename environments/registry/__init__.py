"""The record: Shipyard's single source of truth (SQLAlchemy 2, Alembic, SQLite or PostgreSQL)."""

from environments.registry.database import Database, open_database, shipyard_home

__all__ = ["Database", "open_database", "shipyard_home"]
