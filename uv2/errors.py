"""Bad input, told apart from bugs: the errors that a missing or malformed file or an invalid setting raises derive
from InputError, and `python -m uv2` reports them in one line (the message names the file or field and the valid
choices) with exit status 2. Any other exception is a bug in uv2 or a library and keeps its traceback."""

import re

EXIT_INTERRUPTED = 130  # the exit status of a command stopped by Ctrl-C (128 + SIGINT, as the shell reports it)


class InputError(Exception):
    """A file or setting the user gave is missing or invalid; the message says which and what is valid."""


class MissingFileError(InputError, FileNotFoundError):
    """A file or folder the user named (a video list, classes file, annotation file, video folder) does not exist."""


class SettingError(InputError, ValueError):
    """A setting (a config field or an argument) holds an invalid value; the message names it and what is valid."""


def input_error_in(err: BaseException) -> InputError | None:
    """`err` if it is an InputError, else the first InputError it was raised from along its ``__cause__`` chain
    (jsonargparse raises its own ValueError from the one a data module's ``__init__`` raised), else None. Never
    ``__context__``: an exception raised while another was being handled is a bug, whatever that other was."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, InputError):
            return err
        seen.add(id(err))
        err = err.__cause__
    return None


def error_message(err: BaseException) -> str:
    """The message of `err` as its raiser wrote it. An error raised in a DataLoader worker comes back to the main
    process as the same type, with "Caught <type> in DataLoader worker process N." and the worker's traceback for
    its message; this gives the original message, which the traceback's last line holds."""
    text = str(err)
    if not text.startswith(f"Caught {type(err).__name__} in DataLoader worker process"):
        return text
    name = re.escape(type(err).__name__)
    found = list(re.finditer(rf"^(?:[\w.]+\.)?{name}: ", text, flags=re.MULTILINE))
    return text[found[-1].end():].strip() if found else text
