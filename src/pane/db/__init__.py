"""Engines, sessions, the tenant-scoped transaction, embedded servers and migrations."""
