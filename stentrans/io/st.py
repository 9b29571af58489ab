"""Spatial Transcriptomics count tables: ``.tsv``/``.csv`` (optionally gzipped) with ``XxY`` spot ids.

The spot ids sit on the rows or on the columns (the axis holding them is
detected). ``array_col = X``, ``array_row = Y``; centroids such as
``16.92x9.015`` are snapped to the nearest integer. Ids written from R data
frames carry ``make.names``' prefix (``X12x5``, ``X16.92x9.015``): it is
removed when every id has it (``uns["stentrans"]["spot_id_prefix"]``;
``obs_names`` keep the ids of the file). ``obsm["spatial"]`` is
the unsnapped ``X``, ``Y`` in micrometres (:func:`stentrans.lattice.physical`
with the lattice's spot pitch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import InputError
from ._assemble import _finish, _lattice_um, _spatial_units
from ._text import _examples, _parse_st_ids_r, _read_table, _table_matrix
from .snap import _resolve_lattice, _snap_integer


def read_st(path: Path, *, lattice: str, snap_tol: float, **_):
    """An ST count table (``XxY`` spot ids on the rows or the columns) onto its square lattice."""
    import anndata as ad_

    df = _read_table(path)
    ok_r, xr, yr, pre_r = _parse_st_ids_r(df.index)
    ok_c, xc, yc, pre_c = _parse_st_ids_r(df.columns)
    if ok_r.mean() >= 0.5 and ok_r.mean() >= ok_c.mean():
        rows, ok, x, y, prefix = True, ok_r, xr, yr, pre_r
    elif ok_c.mean() >= 0.5:
        rows, ok, x, y, prefix = False, ok_c, xc, yc, pre_c
    else:
        raise InputError(path, "spot ids", f"no spot coordinates (counts without positions): neither the row labels (e.g. {_examples(df.index, 3)}) nor the column labels are spot ids 'XxY'; give a coordinates file too (--coords FILE; read(..., coords=FILE))")
    X, spots, genes = _table_matrix(df, rows, path)
    if not ok.all():
        raise InputError(path, "spot ids", f"{int((~ok).sum())} spot id(s) not of the form 'XxY': {_examples(np.asarray(spots)[~ok])}")
    r, c, snap = _snap_integer(y, x, np.asarray(spots), snap_tol, path, "spot ids")
    adata = ad_.AnnData(X=X, obs=pd.DataFrame(index=spots), var=pd.DataFrame(index=genes))
    adata.obs["in_tissue"] = 1
    adata.obs["array_row"] = r
    adata.obs["array_col"] = c
    adata.obs["spot_x"] = x
    adata.obs["spot_y"] = y
    lat = _resolve_lattice(lattice, r, c, path, auto_hex=False)
    adata.obsm["spatial"] = _lattice_um(y, x, lat)
    ad = _finish(adata, path=path, fmt="st_table", main_file=path, lattice=lat, auto_hex=False, resolved=True, extra={"snap": snap, "orientation": "spots x genes" if rows else "genes x spots", "spot_id_prefix": prefix or None})
    ad.uns["stentrans"]["spatial_units"] = _spatial_units(lat).replace("array_col", "X").replace("array_row", "Y") + " (X, Y as in the spot ids, before snapping)"
    return ad
