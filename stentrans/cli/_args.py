"""Argument groups built from the config dataclasses: every default is written once.

A dataclass field becomes ``--field-name`` with the field's default. Field
metadata refine it:

* ``help``: the help text;
* ``choices``: allowed values;
* ``flag``: another flag name (e.g. ``--no-pos`` for ``use_pos``);
* ``cli``: ``False`` keeps the field off the command line.

Booleans that default to False become ``store_true`` switches, those that
default to True ``--no-...`` switches, whose help says what they turn off
(the field's help describes the behaviour that is on). Tuples take as many values as their
default has. ``int | str`` / ``float | str`` fields take a number or a word
(``"auto"``); ``X | None`` fields take ``X`` and default to None.
"""

from __future__ import annotations

import argparse
import dataclasses


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _scalar(name: str):
    return {"int": int, "float": float, "str": str}.get(name.strip(), str)


def _number_or_word(kinds):
    def parse(text: str):
        for k in kinds:
            if k is str:
                continue
            try:
                return k(text)
            except ValueError:
                pass
        if str in kinds:
            return text
        raise argparse.ArgumentTypeError(f"invalid value: {text!r}")

    return parse


def _kwargs(f: dataclasses.Field, default) -> dict:
    typ = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    kw: dict = {"default": default}
    parts = [p.strip() for p in typ.split("|")]
    if typ == "bool":
        kw["action"] = "store_false" if default else "store_true"
    elif typ.startswith("tuple") or isinstance(default, tuple):
        inner = typ[typ.find("[") + 1 : typ.rfind("]")].split(",")[0] if "[" in typ else type(default[0]).__name__
        kw.update(type=_scalar(inner), nargs=len(default) if default else "+")
    elif len(parts) > 1:
        kinds = [_scalar(p) for p in parts if p != "None"]
        kw["type"] = kinds[0] if len(kinds) == 1 else _number_or_word(kinds)
    else:
        kw["type"] = _scalar(typ)
    if "choices" in f.metadata:
        kw["choices"] = list(f.metadata["choices"])
    help_ = f.metadata.get("help")
    if help_ is not None:
        if kw.get("action") == "store_false":  # a --no-... switch: say what it turns off
            help_ = f"turn off (on by default): {help_}"
        kw["help"] = help_ + ("" if kw.get("action") else " (default: %(default)s)")
    return kw


def add_config_args(parser, cls, *, prefix: str = "", skip=(), overrides: dict | None = None, title: str | None = None):
    """Add one argument per field of dataclass ``cls`` (``--PREFIXfield-name``).

    ``overrides`` replace defaults (for a command whose own default differs,
    stated there once). Returns the group the arguments went into.
    """
    group = parser.add_argument_group(title) if title else parser
    overrides = overrides or {}
    for f in dataclasses.fields(cls):
        if f.name in skip or f.metadata.get("cli", True) is False:
            continue
        default = overrides.get(f.name, _default(f))
        kw = _kwargs(f, default)
        flag = f.metadata.get("flag")
        if flag is None:
            base = f.name.replace("_", "-")
            flag = f"--{prefix}{'no-' if kw.get('action') == 'store_false' else ''}{base}"
        group.add_argument(flag, dest=prefix.replace("-", "_") + f.name, **kw)
    return group


def config_from_args(cls, args, *, prefix: str = "", skip=(), **extra):
    """Build ``cls`` from the parsed arguments that :func:`add_config_args` added."""
    kw = {}
    for f in dataclasses.fields(cls):
        dest = prefix.replace("-", "_") + f.name
        if f.name in skip or not hasattr(args, dest):
            continue
        v = getattr(args, dest)
        kw[f.name] = tuple(v) if isinstance(v, list) else v
    kw.update(extra)
    return cls(**kw)
