"""The one error type of tok: a user-facing problem with input, weights or a token file.

The CLI turns a `TokError` into a one-line message and exit code 1; any other exception is a
bug and keeps its traceback.
"""


class TokError(Exception):
    """Bad input, missing or incompatible weights, invalid token files, unknown model names."""
