"""Connector SDK and built-in connectors: vendor APIs in, normalized records out.

Connectors never touch the database.
"""
