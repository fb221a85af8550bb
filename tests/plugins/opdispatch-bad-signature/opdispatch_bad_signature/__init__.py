"""A plugin distribution whose conv2d kernel signature does not fit the schema (test suite only)."""
