"""Target adapters: the only code that knows a system's URLs, JSON fields and SQL."""
