"""In-process fakes of the third-party services Shipyard talks to, for tests."""
