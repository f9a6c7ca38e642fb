"""numbers-etl: keep a PostgreSQL table of every phone number rented from telephony providers."""

__version__ = "0.1.0"
