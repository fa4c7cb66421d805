"""Service functions: verbs that take the acting user and plain data."""
