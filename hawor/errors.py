"""The project's two error types: bad input (the user can fix it) and internal errors (a bug).

``HaworInputError``: CLIs catch it, print its message and exit with code 2; library callers get a
ValueError subclass. The message names the input, says what was wrong and how to fix it.
``HaworInternalError``: an inconsistency inside the project (a stage broke its contract); it keeps
its traceback and is never reported as bad input.
"""


class HaworInputError(ValueError):
    """Bad input: a missing, truncated or wrong file, or an option that cannot work."""


class HaworInternalError(RuntimeError):
    """A bug: a stage returned something that breaks its contract. Report it with the traceback."""
