"""Errors the engine raises on purpose.

`UserError`: bad input or configuration, reported to the user as one sentence (CLI: stderr
and exit 2; protocol: an error reply). `Cancelled`: the caller's cancel check fired.
"""


class UserError(Exception):
    """Bad input or configuration; the message is a complete sentence for the user."""


class Cancelled(Exception):
    """The edit was cancelled through its cancel check."""
