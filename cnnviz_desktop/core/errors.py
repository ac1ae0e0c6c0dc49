"""One exception type for every problem a user can fix (bad file, bad argument, missing data)."""


class CnnvizError(Exception):
    """A user-facing error: the message says what is wrong and what to do. Never shown as a traceback."""
