"""Errors raised for bad user input.

Every error names the file, the field and the offending value in one line, so
the CLI and the workflow scripts can print it without a traceback.
"""

from __future__ import annotations

import contextlib

#: fields of errors raised on arrays that describe the data (not a setting):
#: such errors name the data's file once it is known (:func:`naming_file`)
DATA_FIELDS = ("mask", "maps", "genes", "spots", "counts")


class InputError(ValueError):
    """Bad input: one line naming file, field and value."""

    def __init__(self, file, field: str | None, problem: str):
        self.file = str(file) if file is not None else "<memory>"
        self.field = field
        self.problem = problem
        where = f"{self.file}: {field}: " if field else f"{self.file}: "
        super().__init__((where + problem).replace("\n", " "))


@contextlib.contextmanager
def naming_file(file):
    """Inside, errors about the data raised on arrays (file ``<memory>``) name ``file`` instead.

    Methods see arrays only; the API calls that hand them an AnnData's arrays
    wrap the call with the AnnData's source (``uns["stentrans"]["source"]``),
    so the error says which input was bad. ``file`` None (or empty) changes
    nothing.
    """
    try:
        yield
    except InputError as err:
        if not file or err.file != "<memory>" or err.field not in DATA_FIELDS:
            raise
        raise InputError(file, err.field, err.problem) from err
