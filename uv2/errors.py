"""Bad input, told apart from bugs: the errors that a missing or malformed file or an invalid setting raises derive
from InputError, and `python -m uv2` reports them in one line (the message names the file or field and the valid
choices) with exit status 2. Any other exception is a bug in uv2 or a library and keeps its traceback."""


class InputError(Exception):
    """A file or setting the user gave is missing or invalid; the message says which and what is valid."""
