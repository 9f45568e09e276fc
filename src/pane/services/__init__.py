"""Business logic, one module per domain. All SQL lives here; services flush, never commit."""
