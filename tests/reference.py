"""Where the third-party files the tests use live: tests/data/reference (see its README)."""

from pathlib import Path

REFERENCE = Path(__file__).resolve().parent / "data" / "reference"
