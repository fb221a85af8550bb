"""A plugin distribution whose entry-point module cannot be imported (test suite only)."""
