"""Shipyard's tests: unit tables, integration on real databases, end-to-end on the CLI."""
