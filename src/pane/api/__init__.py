"""Routers only: parse, authorize, call a service, shape the response."""
