"""The one error type for bad user input (files, videos, options).

CLIs catch it, print its message and exit with code 2; library callers get a ValueError subclass.
The message names the input, says what was wrong and how to fix it.
"""


class HaworInputError(ValueError):
    """Bad input: a missing, truncated or wrong file, or an option that cannot work."""
