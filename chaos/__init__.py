"""loomchaos: a chaos and fault-injection gate for multi-replica services on Postgres."""

__version__ = "0.1.0"
