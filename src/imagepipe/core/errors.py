"""The error a user can act on; every stage reports it as a one-line message."""


class StageError(Exception):
    """Bad input a user can fix: the message says what was wrong and what is allowed."""
