"""Sepal: rank genes by the time their profile takes to diffuse to uniformity.

Re-implementation of Sepal (Andersson & Lundeberg 2021, *Bioinformatics*
37:2644-2650, "Sepal: identifying transcript profiles with spatial patterns by
diffusion-based modeling") that advances **all genes at once**: one sparse
``(spots x spots)`` operator times a dense ``(spots x genes)`` matrix per time
step, on the GPU through torch when one is present.

The method (every constant below is the authors'; source in brackets)
---------------------------------------------------------------------
1. Normalisation of each profile ``x`` (raw counts of one gene over the spots):
   ``c0 = log2(x + 2) / max(log2(x + 2))`` [pseudocount 2: the ``sepal run
   --pseudocount`` default and ``sepal.utils.normalize_expression``; division
   by the column maximum: ``sepal.models.propagate``]. Counts are used as they
   are, without library-size normalisation (``sepal run`` builds its count
   objects with ``normalize=False``).
2. Graph: spots are nodes; neighbours are the nearest lattice points
   (4 on the square ST lattice, 6 on the Visium honeycomb), lattice distance
   scaled so that the nearest-neighbour spacing is ``h = 1`` [the authors
   divide coordinates by the minimum inter-spot distance, ``_scale_crd``].
   Missing spots (holes, tissue edge) are simply absent nodes.
3. A node with its full neighbourhood (4 or 6 neighbours present) is
   *saturated*. The Laplacian is evaluated only there:
   square (five-point stencil) ``(sum_nbrs - 4 c) / h**2``;
   hex (seven-point stencil) ``2 / (3 h**2) * (sum_nbrs - 6 c)``
   [``laplacian_rect`` / ``laplacian_hex``].
4. Boundary: an unsaturated node changes by the same amount as its nearest
   saturated node (Euclidean distance in lattice geometry)
   [``get_unsatnbr_idx`` and ``stepping``]. Most boundary nodes have two or
   more equally near saturated nodes; the authors take whichever
   ``numpy.argsort`` lists first, an arbitrary choice that matters: on the
   melanoma data three random tie choices give rankings with Spearman
   0.85-0.87 to each other and share only ~70 of their top-150 genes (CCL21
   moves between rank 1 and rank > 150). By default (``ties="mean"``) such a
   node takes the mean change of its equally near saturated nodes: the
   consensus of all tie choices (Spearman 0.92-0.93 to each of them) and the
   closest to the authors' published melanoma ranking (Spearman 0.915 over
   10,033 shared genes, 80 of the top 150 shared; single tie choices reach
   0.85-0.89). ``ties="first"`` (lowest index) reproduces squidpy.
5. Explicit Euler step (Fick's second law, diffusion rate ``D = 1``):
   ``c <- max(c + dt * L c, 0)``.
   ``dt = 0.001`` on square lattices and ``dt = 0.01`` on hex lattices
   [the authors' published results in their repository: every ST diffusion
   time (melanoma, mouse olfactory bulb) is a multiple of 0.001 and every
   Visium time (lymph node, mouse brain) a multiple of 0.01]. Both are far
   inside the stability limit of the scheme (``dt < h**2 / 4`` square,
   ``dt < 3 h**2 / 16`` hex).
6. Convergence: after each step the Shannon entropy (nats) of the saturated
   nodes' values, normalised to sum 1, is divided by the number of saturated
   nodes; the simulation stops when this quantity changes by at most
   ``thresh = 1e-8`` between two steps [``sepal run --threshold`` default].
   The value before the first step is taken as 1, as in the authors' code,
   so the earliest possible stop is after 2 steps.
7. Diffusion time = number of steps x ``dt``. A long time means the profile
   holds large-scale structure; genes are ranked by decreasing time.

Differences to ``squidpy.gr.sepal`` (1.8), found by reading it and running
both on the same graph (see ``tests/test_sepal.py``):

* squidpy does **not** normalise: it diffuses whatever ``X`` holds. On raw
  counts the ``log2(x + 2)`` pedestal is missing, sparse genes (a few single
  counts scattered over the tissue) become isolated spikes that take very
  long to spread, so they top the ranking (melanoma: PRCC, GZF1, RAB20...,
  seen in 12-54 of 279 spots) and ~19 % of genes do not reach the entropy
  threshold within ``n_iter = 30000`` steps, which squidpy reports as NaN.
  Given ``log2(x + 2) / max`` input (and ``ties="first"``) it agrees with
  this module exactly, up to the offset below.
* squidpy reports ``(steps - 1) * dt``; the authors (and this module) report
  ``steps * dt``: a constant offset of one ``dt``.
* squidpy picks, for a boundary node, the first saturated graph neighbour and
  otherwise the nearest saturated node in L1 distance on ``obsm["spatial"]``;
  this module uses Euclidean lattice distance as the authors do. On lattices
  with holes the two can choose different (equally near in L1) nodes.
* squidpy uses one ``dt = 0.001`` default for both lattices and loops over
  genes one at a time (minutes for a whole transcriptome); this module steps
  all genes together and drops converged genes from the working set.

Lattice spacing and the convergence criterion
---------------------------------------------
The criterion compares the entropy change of one step (proportional to
``dt / h**2``) with ``thresh`` times the number of saturated nodes; in
continuous terms a gene has converged when ``|dH/dt| <= thresh * n_sat / dt``.
It therefore depends on the number of spots: the authors' ``dt`` per lattice
keeps ``n_sat / dt`` similar for ST arrays (a few hundred spots, dt 0.001)
and Visium slides (thousands of spots, dt 0.01). On a lattice with 4x the
spots at the same ``dt`` and ``h = 1`` the criterion is 4x looser and the
ranking is dominated by count noise instead of spatial structure (seen on a
full 30 x 30 synthetic square array: 20-26 of 30 planted genes in the top 30
at dt 0.001, 29-30 at dt 0.004; on an ST-sized tissue of ~330 spots in the
same array, 29-30 at dt 0.001).

Enhanced data (half-step coordinates) has 4x the spots of the measured data.
``h`` is therefore the neighbour spacing **in units of the measured
lattice**: 1 for measured data (the authors' scaled coordinates, identical to
the paper) and 0.5 for enhanced data. Then ``dt / h**2`` grows by the same 4x
as ``n_sat``, the criterion means the same on both data sets, and diffusion
times are in the same physical units. (Running the original code on
enhanced data would rescale to ``h = 1``; pass ``h=1`` to get that.)
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import InputError
from ..grid import lattice_of, source_of
from ..lattice import NEIGHBOUR_OFFSETS, physical
from ._diffusion import DT, SepalConfig, _use_torch, diffusion_operator, diffusion_times, normalize_profiles

log = logging.getLogger("stentrans.sepal")

__all__ = ["sepal", "sepal_scores", "spot_graph", "lattice_coords", "SepalConfig"]

_S = SepalConfig()


# --------------------------------------------------------------------------
# lattice and graph
# --------------------------------------------------------------------------
def lattice_coords(adata) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer lattice coordinates ``(row, col, factor)`` of the spots.

    Measured data has integer ``array_row``/``array_col``; enhanced data has
    half steps (multiples of 0.5) and is mapped to the doubled integer lattice
    (``factor = 2``), which is a lattice of the same kind: square stays square,
    the Visium checkerboard stays a checkerboard with the same neighbour
    offsets.
    """
    src = source_of(adata)
    try:
        r = np.asarray(adata.obs["array_row"], dtype=float)
        c = np.asarray(adata.obs["array_col"], dtype=float)
    except KeyError as err:
        raise InputError(src, f"obs[{err.args[0]!r}]", "missing; spots need lattice coordinates") from None
    if not (np.isfinite(r).all() and np.isfinite(c).all()):
        raise InputError(src, "array_row/array_col", "non-finite lattice coordinates")
    factor = 1
    for f in (1, 2):
        if np.allclose(r * f, np.rint(r * f), atol=1e-6) and np.allclose(c * f, np.rint(c * f), atol=1e-6):
            factor = f
            break
    else:
        bad = np.flatnonzero((np.abs(r * 2 - np.rint(r * 2)) > 1e-6) | (np.abs(c * 2 - np.rint(c * 2)) > 1e-6))[:5]
        ex = ", ".join(f"{adata.obs_names[i]} ({r[i]:g}, {c[i]:g})" for i in bad)
        raise InputError(src, "array_row/array_col", f"coordinates must be integers or half steps, e.g. {ex}")
    ri = np.rint(r * factor).astype(np.int64)
    ci = np.rint(c * factor).astype(np.int64)
    return ri, ci, factor



def _graph_from_coords(row, col, lattice, source=None, ids=None) -> sp.csr_matrix:
    n = row.size
    if lattice == "hex":
        bad = ((row + col) % 2) != 0
        if bad.any():
            j = np.flatnonzero(bad)[:5]
            ex = ", ".join(f"{ids[i] if ids is not None else i} ({row[i]}, {col[i]})" for i in j)
            raise InputError(source, "array_row/array_col", f"{bad.sum()} spot(s) with odd row + col on a hex lattice, e.g. {ex}")
    if n == 0:
        return sp.csr_matrix((0, 0))
    r0, c0 = row.min() - 2, col.min() - 2
    shape = (int(row.max() - r0 + 3), int(col.max() - c0 + 3))
    index = np.full(shape, -1, dtype=np.int64)
    pr, pc = row - r0, col - c0
    if np.unique(pr * shape[1] + pc).size != n:
        flat = pr * shape[1] + pc
        u, cnt = np.unique(flat, return_counts=True)
        who = np.flatnonzero(np.isin(flat, u[cnt > 1]))[:4]
        ex = ", ".join(str(ids[i]) if ids is not None else str(i) for i in who)
        raise InputError(source, "array_row/array_col", f"{(cnt > 1).sum()} lattice position(s) hold more than one spot: {ex}")
    index[pr, pc] = np.arange(n)
    rows, cols = [], []
    for dr, dc in NEIGHBOUR_OFFSETS[lattice]:
        nb = index[pr + dr, pc + dc]
        ok = nb >= 0
        rows.append(np.flatnonzero(ok))
        cols.append(nb[ok])
    rows = np.concatenate(rows)
    cols = np.concatenate(cols)
    A = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(n, n))
    A.sort_indices()
    return A


def spot_graph(adata) -> sp.csr_matrix:
    """Adjacency of the spots on their lattice (``scipy.sparse.csr_matrix``, 0/1).

    Square lattices connect the 4 nearest spots, hex (Visium) lattices the 6
    at offsets ``(0, +-2)`` and ``(+-1, +-1)`` (:data:`stentrans.lattice.NEIGHBOUR_OFFSETS`).
    Half-step coordinates of enhanced data are doubled first (see
    :func:`lattice_coords`). Only existing spots are nodes; a spot next to a
    hole or the tissue edge has fewer neighbours.
    """
    lattice = lattice_of(adata)
    row, col, _ = lattice_coords(adata)
    return _graph_from_coords(row, col, lattice, source=source_of(adata), ids=np.asarray(adata.obs_names))


def sepal_scores(
    adata,
    *,
    genes=None,
    layer: str | None = None,
    max_iter: int = _S.max_iter,
    dt: float | None = _S.dt,
    thresh: float = _S.thresh,
    device=_S.device,
    normalize: bool = _S.normalize,
    pseudocount: float = _S.pseudocount,
    h: float | None = _S.h,
    ties: str = _S.ties,
    dtype: str | None = _S.dtype,
) -> pd.DataFrame:
    """Rank genes by Sepal diffusion time (Andersson & Lundeberg 2021): the table.

    What :func:`sepal` stores in the AnnData, returned as a DataFrame instead
    (the AnnData is not changed).

    Parameters
    ----------
    adata
        AnnData with ``obs["array_row"]``, ``obs["array_col"]`` (integers, or
        half steps for enhanced data) and ``uns["stentrans"]["lattice"]``.
    genes
        Genes to rank (default: all ``var_names``).
    layer
        Layer holding **counts** (default ``X``). The normalisation
        ``log2(x + 2) / max`` is defined on counts.
    max_iter
        Step limit per gene (the authors have none; 100,000 steps = time 100
        on square and 1,000 on hex lattices, far above any time on real data).
    dt
        Time step; default :data:`DT` of the lattice: 0.001 square (ST),
        0.01 hex (Visium), as in the authors' published results.
    thresh
        Convergence threshold on the change of entropy per saturated node
        between two steps; 1e-8 (authors' default).
    device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``...
    normalize, pseudocount
        ``log2(x + pseudocount) / max`` per gene (authors: on, 2). With
        ``normalize=False`` the values are diffused as they are (what
        ``squidpy.gr.sepal`` does).
    h
        Neighbour spacing in the Laplacian, in units of the measured lattice;
        default 1 for integer coordinates (the paper) and 0.5 for half-step
        (enhanced) coordinates, which keeps the convergence criterion and
        the time unit the same as on the measured data (module docstring).
    ties
        Boundary nodes with several equally near saturated nodes take the
        ``"mean"`` of their changes (default) or that of the ``"first"``
        (lowest index; squidpy's choice on hole-free lattices). See
        :func:`diffusion_operator`.
    dtype
        ``"float64"`` (default on CPU: the threshold resolves entropy changes
        of ~1e-6 on a few hundred spots; identical to squidpy) or
        ``"float32"`` (default on CUDA; ~1.8x faster on CPU; on melanoma
        95 % of times identical, the rest one step apart, same top 150).

    Returns
    -------
    pandas.DataFrame
        Index: gene. Columns ``diffusion_time``, ``converged`` (False: stopped
        at ``max_iter``, time is a lower bound), ``rank`` (1 = longest time,
        i.e. most spatially structured; at equal times unconverged genes
        first, then input order). Sorted by rank. ``attrs`` hold the parameters, the lattice, ``n_saturated`` and
        ``seconds``.
    """
    t0 = time.perf_counter()
    lattice = lattice_of(adata)
    src = source_of(adata)
    if genes is None:
        genes = list(adata.var_names)
    else:
        genes = [genes] if isinstance(genes, str) else list(genes)
        missing = [g for g in genes if g not in adata.var_names]
        if missing:
            raise InputError(src, "genes", f"{len(missing)} gene(s) not in var_names, e.g. {missing[:5]}")
    if not genes:
        raise InputError(src, "genes", "no genes to rank")
    if layer is not None and layer not in adata.layers:
        raise InputError(src, "layer", f"{layer!r} not in layers {list(adata.layers)}")
    dt = DT[lattice] if dt is None else float(dt)
    if not (dt > 0):
        raise InputError(src, "dt", f"must be > 0, got {dt}")
    row, col, factor = lattice_coords(adata)
    h = 1.0 / factor if h is None else float(h)
    if not (h > 0):
        raise InputError(src, "h", f"must be > 0, got {h}")
    if dtype is None:
        dtype = "float32" if _use_torch(device)[0] else "float64"
    adj = _graph_from_coords(row, col, lattice, source=src, ids=np.asarray(adata.obs_names))
    L, saturated = diffusion_operator(adj, np.column_stack(physical(row, col, lattice)), lattice, h=h, ties=ties)
    gidx = adata.var_names.get_indexer(genes)
    X = adata.layers[layer] if layer is not None else adata.X
    X = X[:, gidx]
    C0 = normalize_profiles(X, pseudocount=pseudocount) if normalize else (X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64))
    times, conv, steps = diffusion_times(C0, L, saturated, dt, thresh=thresh, max_iter=max_iter, device=device, dtype=dtype)
    if not conv.all():
        log.warning("sepal: %d of %d genes did not converge within %d steps; their time is a lower bound", (~conv).sum(), conv.size, max_iter)
    df = pd.DataFrame({"diffusion_time": times, "converged": conv}, index=pd.Index(genes, name="gene"))
    # at equal times unconverged genes first (their true time is longer), then input order
    order = np.lexsort((np.arange(len(df)), conv, -times))
    df = df.iloc[order]
    df["rank"] = np.arange(1, len(df) + 1)
    df.attrs.update(
        {
            "method": "sepal",
            "lattice": lattice,
            "coordinate_factor": int(factor),
            "dt": dt,
            "thresh": float(thresh),
            "max_iter": int(max_iter),
            "h": float(h),
            "normalize": bool(normalize),
            "pseudocount": float(pseudocount),
            "n_spots": int(adata.n_obs),
            "n_saturated": int(saturated.sum()),
            "dtype": str(dtype),
            "seconds": time.perf_counter() - t0,
        }
    )
    log.info("sepal: %d genes on %d spots (%d saturated, %s) in %.1f s", len(df), adata.n_obs, saturated.sum(), lattice, df.attrs["seconds"])
    return df


def sepal(
    adata,
    *,
    genes=None,
    layer: str | None = None,
    key_added: str = "sepal",
    copy: bool = False,
    **settings,
):
    """Rank genes by Sepal diffusion time and store the result in ``adata``.

    The scanpy/squidpy-style entry point of :func:`sepal_scores` (as
    ``squidpy.gr.sepal``).

    Parameters
    ----------
    adata, genes, layer
        As in :func:`sepal_scores`.
    key_added
        Written to ``adata.var[f"{key_added}_score"]`` (diffusion time),
        ``[f"{key_added}_rank"]`` (1 = most spatially structured; nullable
        ``Int64``) and ``[f"{key_added}_converged"]`` (nullable ``boolean``);
        genes not ranked hold NaN / NA. The settings, the lattice and the run's
        counts go to ``adata.uns[key_added]``.
    copy
        Return a modified copy instead of writing into ``adata``.
    **settings
        Fields of :class:`SepalConfig` (``max_iter``, ``dt``, ``thresh``,
        ``device``, ``normalize``, ``pseudocount``, ``h``, ``ties``,
        ``dtype``), passed on to :func:`sepal_scores`.

    Returns
    -------
    None, or the modified copy with ``copy=True``.
    """
    df = sepal_scores(adata, genes=genes, layer=layer, **settings)
    if copy:
        adata = adata.copy()
    score = df["diffusion_time"].reindex(adata.var_names)
    adata.var[f"{key_added}_score"] = score.to_numpy(dtype=np.float64)
    adata.var[f"{key_added}_rank"] = pd.array(df["rank"].reindex(adata.var_names), dtype="Int64")
    adata.var[f"{key_added}_converged"] = pd.array(df["converged"].reindex(adata.var_names), dtype="boolean")
    uns = dict(df.attrs)
    uns.update(layer=layer, ties=settings.get("ties", _S.ties), n_genes=int(len(df)))
    adata.uns[key_added] = uns
    return adata if copy else None
