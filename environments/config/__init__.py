"""Configuration models: what shipyard.yaml says, one section per module (read by catalog.py)."""
