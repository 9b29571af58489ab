"""Points with coordinates and counts: what every reader of finer data returns.

Molecules, DNBs, beads and cells all become :class:`Points`: one row per
point with its ``(x, y)`` in the input's units and a sparse counts row over
the genes. A molecule table is the long form ``(x, y, gene, count)``;
:func:`points_from_long` turns each of its rows into one point whose counts
row holds a single entry (``count``, 1 per molecule by default), so that
molecules, beads and cells bin the same way: the counts of the points whose
coordinates fall in a disk are summed (:mod:`stentrans.io.binning`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import InputError
from ._text import MAX_COUNT

__all__ = ["Points", "points_from_long", "numeric_column", "find_column", "check_columns", "row_labels", "file_name"]


@dataclass
class Points:
    """Points with coordinates and a counts vector each.

    Attributes
    ----------
    xy
        ``(n, 2)`` float64 ``x``, ``y`` in the input's units.
    counts
        ``(n, n_genes)`` float32 CSR, raw counts (integers for every reader here).
    genes
        Gene names, in column order of ``counts`` (unique).
    kind
        ``"molecules"``, ``"gem"``, ``"beads"`` or ``"cells"``.
    source
        The file read.
    unit
        Name of the coordinate unit when the layout states it (``"um"``,
        ``"DNB"``, ``"px"``), else ``None``.
    um_per_unit
        Micrometres per coordinate unit when known, else ``None``.
    columns
        The columns used (role -> column name), for the record.
    labels
        How the file names each point in an error (``bead '12x5'``,
        ``cell 'c7'``, ``row 7``); ``None``: ``row <i + 1>`` (data rows
        counted from 1 after the header).
    """

    xy: np.ndarray
    counts: sp.csr_matrix
    genes: pd.Index
    kind: str
    source: str
    unit: str | None = None
    um_per_unit: float | None = None
    columns: dict = field(default_factory=dict)
    labels: pd.Index | None = None

    def __post_init__(self):
        self.xy = np.asarray(self.xy, dtype=np.float64).reshape(-1, 2)
        self.counts = sp.csr_matrix(self.counts, dtype=np.float32)
        self.genes = pd.Index(list(map(str, self.genes)))
        if self.counts.shape != (len(self.xy), len(self.genes)):
            raise InputError(self.source, "counts", f"{self.counts.shape} counts for {len(self.xy)} points x {len(self.genes)} genes")
        blank = np.asarray(self.genes.str.strip() == "")
        if blank.any():
            raise InputError(self.source, "genes", f"empty gene name (gene {int(np.flatnonzero(blank)[0]) + 1} of {len(self.genes)}; {int(blank.sum())} such)")
        if self.labels is not None:
            self.labels = pd.Index(list(map(str, self.labels)))
            if len(self.labels) != len(self.xy):
                raise InputError(self.source, "labels", f"{len(self.labels)} labels for {len(self.xy)} points")

    @property
    def n(self) -> int:
        """Number of points."""
        return int(self.xy.shape[0])

    @property
    def totals(self) -> np.ndarray:
        """Total counts per point, float64."""
        return np.asarray(self.counts.sum(axis=1), dtype=np.float64).ravel()


def numeric_column(values, source, column: str, *, integer: bool = False, nonnegative: bool = False, maximum: float | None = None, labels=None) -> np.ndarray:
    """``values`` as finite float64 (at most ``maximum``); the first bad cell is an :class:`InputError` naming file, column and value.

    ``labels`` (default: ``row <i + 1>``, data rows counted from 1 after the
    header) say where the value is (:func:`row_labels`).
    """
    raw = pd.Series(values).reset_index(drop=True)
    num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(num)
    kind = "non-numeric or missing"
    if not bad.any() and nonnegative:
        bad, kind = num < 0, "negative"
    if not bad.any() and integer:
        bad, kind = num != np.rint(num), "non-integer"
    if not bad.any() and maximum is not None:
        bad, kind = num > maximum, f"too large (above {maximum:g})"
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where = labels[i] if labels is not None else f"row {i + 1}"
        raise InputError(source, f"column {column!r}", f"{kind} value {str(raw.iloc[i])!r} at {where} ({int(bad.sum())} such row(s))")
    return num


def points_from_long(df: pd.DataFrame, *, x: str, y: str, gene: str, count: str | None, source, kind: str, unit=None, um_per_unit=None) -> Points:
    """One point per row of a long table ``(x, y, gene[, count])``; genes sorted by name.

    Without a ``count`` column every row is one molecule (count 1). Rows with
    count 0 are kept (they add nothing to any spot).
    """
    source = str(source)
    if len(df) == 0:
        raise InputError(source, "rows", "no molecules (a header but no data rows)")
    xs = numeric_column(df[x], source, x)
    ys = numeric_column(df[y], source, y)
    g = df[gene]
    if g.dtype == object and len(g) and isinstance(g.iloc[0], bytes):  # Xenium parquet of older versions
        g = g.str.decode("utf-8")
    missing = g.isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise InputError(source, f"column {gene!r}", f"missing gene name at row {i + 1} ({int(missing.sum())} such row(s))")
    g = g.astype(str).str.strip()
    empty = (g == "").to_numpy()
    if empty.any():
        raise InputError(source, f"column {gene!r}", f"empty gene name at row {int(np.flatnonzero(empty)[0]) + 1}")
    if count is None:
        c = np.ones(len(df), dtype=np.float32)
    else:
        c = numeric_column(df[count], source, count, integer=True, nonnegative=True, maximum=MAX_COUNT).astype(np.float32)
    codes, names = pd.factorize(g, sort=True)
    n = len(df)
    X = sp.csr_matrix((c, codes.astype(np.int64), np.arange(n + 1, dtype=np.int64)), shape=(n, len(names)))
    X.eliminate_zeros()
    cols = {"x": x, "y": y, "gene": gene}
    if count is not None:
        cols["count"] = count
    return Points(np.column_stack([xs, ys]), X, pd.Index(names), kind=kind, source=source, unit=unit, um_per_unit=um_per_unit, columns=cols)


def shown_columns(have, limit: int = 12) -> str:
    """The first ``limit`` column names, for an error."""
    have = list(map(str, have))
    return ", ".join(have[:limit]) + (", ..." if len(have) > limit else "")


def find_column(have, *names, source=None, role: str | None = None) -> str | None:
    """The column of ``have`` called one of ``names`` (``None`` entries skipped), in any case.

    An exact match wins (in the order of ``names``); else the one column
    equal to a name ignoring case (``Gene`` for ``gene``). ``None`` when none
    matches. Two columns equal to one name ignoring case (``Gene`` and
    ``GENE``, but no ``gene``) are an :class:`InputError` naming both and the
    flag ``--<role>`` that chooses one.
    """
    have = [str(h) for h in have]
    names = [str(n) for n in names if n is not None]
    for n in names:
        if n in have:
            return n
    for n in names:
        hits = list(dict.fromkeys(h for h in have if h.lower() == n.lower()))
        if len(hits) == 1:
            return hits[0]
        if hits:
            raise InputError(source, "columns", f"{', '.join(map(repr, hits))} all match {n!r} ignoring case; choose one with --{role or 'x/--y/--gene'}")
    return None


def check_columns(source, have, wanted: dict) -> dict:
    """The wanted columns (role -> name) as ``have`` spells them (:func:`find_column`: any case); a missing one is one line naming it."""
    found = {}
    for role, col in wanted.items():
        if col is None:
            found[role] = None
            continue
        hit = find_column(have, col, source=source, role=role)
        if hit is None:
            raise InputError(source, f"--{role}", f"column {col!r} not found (have {shown_columns(have)})")
        found[role] = hit
    return found


def row_labels(index, noun: str = "cell") -> pd.Index:
    """How errors name the rows of ``index``: integer labels (a table's rows, 0-based) as ``row <k + 1>``, others as ``<noun> '<label>'``."""
    index = pd.Index(index)
    if pd.api.types.is_integer_dtype(index.dtype):
        return pd.Index([f"row {int(k) + 1}" for k in index])
    return pd.Index([f"{noun} {str(k)!r}" for k in index])


def file_name(path) -> str:
    """Lower-case name without ``.gz``."""
    name = Path(path).name.lower()
    return name[:-3] if name.endswith(".gz") else name
