"""Errors raised for bad user input.

Every error names the file, the field and the offending value in one line, so
the CLI and the workflow scripts can print it without a traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: one line naming file, field and value."""

    def __init__(self, file, field: str | None, problem: str):
        self.file = str(file) if file is not None else "<memory>"
        self.field = field
        self.problem = problem
        where = f"{self.file}: {field}: " if field else f"{self.file}: "
        super().__init__((where + problem).replace("\n", " "))
