"""Downstream analysis of an enhanced slide against a reference: what users do with the file first (issue 28).

Everything here computes from AnnData objects or arrays and writes nothing
(``benchmarks/downstream.py`` runs it over the real 2x truth of the finer
data sets and writes the tables, docs/downstream.md). The settings are
fixed, module constants, and the same for the truth and every output:

* **Embedding** (:func:`embed`): scanpy ``normalize_total`` (to the median
  library size), ``log1p``, PCA with :data:`N_PCS` components (fewer where
  the data has fewer genes or positions), seed :data:`SEED`.
* **Mixing** (:func:`mixing`): the kNN graph of that embedding
  (``scanpy.pp.neighbors``, :data:`N_NEIGHBORS` neighbours, binary); the
  measured positions' mean share of measured neighbours minus the global
  share of measured positions. 0: the graph does not tell measured from new
  positions; positive: measured spots group together (two noise levels in
  one matrix, issue 28); the bound asked for is ``|mixing| <= 0.05``
  (:data:`MIXING_BOUND`).
* **Domains** (:func:`domains`): k-means with :data:`K_DOMAINS` clusters
  (scikit-learn, ``n_init=10``) on the embedding, and Leiden at resolution
  :data:`LEIDEN_RESOLUTION` on its kNN graph (scanpy, igraph flavour; needs
  the ``leiden`` extra: igraph and leidenalg). Agreement is the adjusted
  Rand index (:func:`ari`). :func:`domain_ceiling`: the ARI of the domains of
  two independent binomial halves of the reference's counts (each molecule
  to one half), how far two independent measurements of the same tissue at
  half the depth agree, a yardstick rather than a bound (a full-depth
  replicate would agree more).
* **Spatially variable genes** (:func:`morans_i`): Moran's I of the
  log-normalised values (the embedding's ``log1p`` of ``normalize_total``)
  with squidpy (``squidpy.gr.spatial_neighbors`` on the lattice's physical
  coordinates, the 6 (hex) or 4 (square) nearest positions, and
  ``squidpy.gr.spatial_autocorr``; the ``squidpy`` extra).
  :func:`svg_agreement`: Spearman of the genes' I against the reference's
  and the overlap of the top :data:`TOP_SVG` genes (top ``n_genes // 2``
  where fewer than ``2 * TOP_SVG`` genes are scored).
* **Sepal -> families -> GO:BP** (:func:`go_terms`): the package's Fig. 4
  chain (:func:`~stentrans.tl.sepal_scores`, :func:`~stentrans.tl.pattern_families`,
  :func:`~stentrans.tl.enrich_families`) at its defaults; the significant
  terms of all families. :func:`term_agreement`: precision (share of an
  output's terms the reference has too) and recall (share of the
  reference's terms the output finds), so a term "new after enhancement"
  counts only where the reference has it.

:func:`downstream` computes all of it for a set of outputs against one
reference; :func:`downstream_reference` is that reference (finer data's
truth, or a simulator's) and :func:`downstream_outputs` the outputs. Positions are matched by their lattice coordinates
(``array_row`` / ``array_col``, half steps on the enhanced lattice;
:func:`match_positions`, :func:`common_positions`, :func:`align_positions`).
:func:`nearest_measured` is the "measured spots only" reference output:
every position takes the values of the nearest measured spot.
:func:`downsample_spots` is ``D(G)`` as an AnnData (the nested protocol's
down-sampling, docs/method.md section 5) with :func:`upsampled_coords` to
carry its enhanced positions back to ``G``'s coordinates.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import InputError

log = logging.getLogger("stentrans.downstream")

#: principal components of the embedding
N_PCS = 30
#: neighbours of the kNN graph (mixing, Leiden)
N_NEIGHBORS = 15
#: clusters of k-means domains
K_DOMAINS = 8
#: Leiden resolution
LEIDEN_RESOLUTION = 1.0
#: the seed of PCA, the kNN graph, k-means, Leiden and the binomial halves
SEED = 0
#: top spatially variable genes compared
TOP_SVG = 50
#: |mixing| at or below this: measured and new positions are one data set (issue 28)
MIXING_BOUND = 0.05
#: the domain clusterings
DOMAIN_METHODS = ("kmeans", "leiden")


# --------------------------------------------------------------------------
# matrices and positions
# --------------------------------------------------------------------------
def _matrix(data, layer: str | None = None) -> np.ndarray:
    """Dense float32 ``(positions, genes)`` of an AnnData (``X`` or ``layer``) or an array."""
    X = data.layers[layer] if layer is not None else data.X if hasattr(data, "X") else data
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    return np.array(X, dtype=np.float32, copy=True)


def _keys(adata) -> pd.Index:
    r = np.asarray(adata.obs["array_row"], dtype=float)
    c = np.asarray(adata.obs["array_col"], dtype=float)
    # half steps are exact in binary: the doubled coordinates are integers
    return pd.Index(np.rint(2 * r).astype(np.int64) * (1 << 32) + np.rint(2 * c).astype(np.int64))


def match_positions(adata, reference) -> np.ndarray:
    """For each position of ``adata``: its row in ``reference`` with the same ``array_row``/``array_col``, else -1."""
    return _keys(reference).get_indexer(_keys(adata))


def common_positions(reference, *others) -> np.ndarray:
    """Rows of ``reference`` whose lattice coordinates every one of ``others`` has too (in the reference's order)."""
    keep = np.ones(reference.n_obs, dtype=bool)
    for o in others:
        keep &= match_positions(reference, o) >= 0
    return np.flatnonzero(keep)


def align_positions(adata, reference, *, rows=None, genes=None):
    """``adata`` restricted and ordered to ``reference``'s positions ``rows`` (default all; each must exist in ``adata``) and to ``genes``."""
    rows = np.arange(reference.n_obs) if rows is None else np.asarray(rows)
    idx = match_positions(reference[rows], adata)
    if (idx < 0).any():
        raise InputError(None, "array_row/array_col", f"{int((idx < 0).sum())} of {len(idx)} reference positions missing from the data")
    out = adata[idx]
    if genes is not None:
        out = out[:, list(genes)]
    return out.copy()


def nearest_measured(reference, measured, *, genes=None, lattice: str | None = None):
    """"Measured spots only": ``reference``'s positions, each with the values of the nearest ``measured`` spot (physical distance on the lattice).

    Ties (a midpoint between two spots) go to the spot that comes first in
    ``measured``. Returns an AnnData with ``reference``'s obs (and
    ``obs["is_imputed"]`` True where no spot sits at the position) and
    ``measured``'s genes (or ``genes``).
    """
    import anndata as ad
    from scipy.spatial import cKDTree

    from ..grid import lattice_of
    from ..lattice import physical

    lattice = lattice or lattice_of(measured)
    xm = np.column_stack(physical(measured.obs["array_row"], measured.obs["array_col"], lattice))
    xr = np.column_stack(physical(reference.obs["array_row"], reference.obs["array_col"], lattice))
    _, near = cKDTree(xm).query(xr, k=1)
    src = measured if genes is None else measured[:, list(genes)]
    X = _matrix(src)[near]
    out = ad.AnnData(X, obs=reference.obs[["array_row", "array_col"]].copy(), var=pd.DataFrame(index=src.var_names.copy()))
    out.obs["is_imputed"] = match_positions(reference, measured) < 0
    out.uns["stentrans"] = {"lattice": lattice, "method": "measured-only"}
    return out


# --------------------------------------------------------------------------
# embedding, mixing, domains
# --------------------------------------------------------------------------
def embed(data, *, layer: str | None = None, n_pcs: int = N_PCS, seed: int = SEED):
    """AnnData of the normalised (``normalize_total``, ``log1p``) values with ``obsm["X_pca"]``."""
    import anndata as ad
    import scanpy as sc

    X = _matrix(data, layer)
    np.maximum(X, 0, out=X)
    a = ad.AnnData(X)
    sc.pp.normalize_total(a)
    sc.pp.log1p(a)
    n = max(1, min(n_pcs, a.n_vars - 1, a.n_obs - 1))
    sc.pp.pca(a, n_comps=n, random_state=seed)
    return a


def _neighbors(a, seed: int = SEED, k: int = N_NEIGHBORS):
    import scanpy as sc

    if "neighbors" not in a.uns:
        sc.pp.neighbors(a, n_neighbors=k, random_state=seed)
    return a


def _is_measured(data, is_measured):
    if is_measured is None:
        if not hasattr(data, "obs") or "is_imputed" not in data.obs:
            raise InputError(None, 'obs["is_imputed"]', "missing: give is_measured")
        return ~np.asarray(data.obs["is_imputed"], dtype=bool)
    m = np.asarray(is_measured, dtype=bool)
    if m.ndim != 1 or len(m) != (data.n_obs if hasattr(data, "n_obs") else np.shape(data)[0]):
        raise InputError(None, "is_measured", f"{m.shape}: one bool per position needed")
    return m


def mixing_shares(data, *, is_measured=None, layer: str | None = None, k: int = N_NEIGHBORS, n_pcs: int = N_PCS, seed: int = SEED, embedding=None) -> dict:
    """The shares behind :func:`mixing`: ``measured_share`` (global), ``measured_neighbours`` (measured positions' mean share of measured kNN neighbours), ``new_neighbours`` (the same for new positions) and ``mixing``."""
    m = _is_measured(data, is_measured)
    if not m.any() or m.all():
        raise InputError(None, "is_measured", "needs both measured and new positions")
    a = _neighbors(embedding if embedding is not None else embed(data, layer=layer, n_pcs=n_pcs, seed=seed), seed, k)
    C = (a.obsp["distances"] > 0).astype(np.float64)
    share = (C @ m.astype(np.float64)) / np.maximum(np.asarray(C.sum(1)).ravel(), 1)
    g = float(m.mean())
    return {"measured_share": g, "measured_neighbours": float(share[m].mean()), "new_neighbours": float(share[~m].mean()), "mixing": float(share[m].mean() - g)}


def mixing(data, *, is_measured=None, **kwargs) -> float:
    """Measured positions' mean share of measured kNN neighbours minus the global measured share (module docstring).

    ``data``: an enhanced AnnData (``is_measured`` defaults to
    ``~obs["is_imputed"]``) or a ``(positions, genes)`` array with
    ``is_measured`` (one bool per position). Keywords of :func:`mixing_shares`.
    """
    return mixing_shares(data, is_measured=is_measured, **kwargs)["mixing"]


def domains(data, *, layer: str | None = None, methods=DOMAIN_METHODS, k: int = K_DOMAINS, resolution: float = LEIDEN_RESOLUTION, seed: int = SEED, embedding=None) -> dict[str, np.ndarray]:
    """Domain labels per clustering in ``methods`` (``"kmeans"``, ``"leiden"``) of the embedding (module docstring)."""
    a = embedding if embedding is not None else embed(data, layer=layer, seed=seed)
    out = {}
    for name in methods:
        if name == "kmeans":
            from sklearn.cluster import KMeans

            out[name] = KMeans(n_clusters=min(k, a.n_obs), n_init=10, random_state=seed).fit_predict(a.obsm["X_pca"])
        elif name == "leiden":
            import scanpy as sc

            try:
                import igraph  # noqa: F401
                import leidenalg  # noqa: F401
            except ImportError:
                raise InputError(None, "domains", "Leiden needs igraph and leidenalg (pip install 'stentrans[leiden]')") from None
            _neighbors(a, seed)
            sc.tl.leiden(a, resolution=resolution, random_state=seed, flavor="igraph", n_iterations=2, directed=False, key_added="_leiden")
            out[name] = a.obs["_leiden"].astype(int).to_numpy()
        else:
            raise InputError(None, "domains", f"unknown clustering {name!r}: choose from {', '.join(DOMAIN_METHODS)}")
    return out


def ari(labels_a, labels_b) -> float:
    """Adjusted Rand index of two labelings of the same positions."""
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(np.asarray(labels_a), np.asarray(labels_b)))


def binomial_halves(data, *, layer: str | None = None, seed: int = SEED):
    """Two independent binomial halves ``(A, B)`` (dense) of integer counts (:func:`stentrans.io.binomial_split`)."""
    from ..io import binomial_split

    X = _matrix(data, layer)
    if not np.array_equal(X, np.rint(X)) or (X < 0).any():
        raise InputError(None, "counts", "binomial halves need non-negative integer counts")
    return binomial_split(X, np.random.default_rng((int(seed), 3)))


def domain_ceiling(reference, *, layer: str | None = None, methods=DOMAIN_METHODS, seed: int = SEED, **kwargs) -> dict[str, float]:
    """ARI of the domains of two independent binomial halves of the reference's counts, per clustering (module docstring; ``kwargs``: :func:`domains`' ``k``, ``resolution``)."""
    return _halves_ari(*binomial_halves(reference, layer=layer, seed=seed), seed, methods, **kwargs)


# --------------------------------------------------------------------------
# spatially variable genes
# --------------------------------------------------------------------------
def morans_i(adata, *, layer: str | None = None, lattice: str | None = None) -> pd.Series:
    """Moran's I per gene (squidpy) of the log-normalised values on the lattice's nearest-neighbour graph (module docstring)."""
    try:
        import squidpy as sq
    except ImportError:
        raise InputError(None, "morans_i", "needs squidpy (pip install 'stentrans[squidpy]')") from None
    from ..grid import lattice_of
    from ..lattice import physical

    lattice = lattice or lattice_of(adata)
    a = embed(adata, layer=layer, n_pcs=1)
    a.var_names = adata.var_names.astype(str)
    a.obsm["spatial"] = np.column_stack(physical(adata.obs["array_row"], adata.obs["array_col"], lattice))
    n_neighs = 6 if lattice == "hex" else 4
    # the lattice graph (the same as tl.spot_graph); squidpy >= 1.8 names the grid mode on its own
    grid_neighbors = getattr(sq.gr, "spatial_neighbors_grid", None)
    if grid_neighbors is not None:
        grid_neighbors(a, n_neighs=n_neighs, n_rings=1)
    else:  # pragma: no cover - older squidpy
        sq.gr.spatial_neighbors(a, coord_type="grid", n_neighs=n_neighs, n_rings=1)
    sq.gr.spatial_autocorr(a, mode="moran", genes=list(a.var_names), n_perms=None, two_tailed=False, copy=False, show_progress_bar=False)
    return a.uns["moranI"]["I"].reindex(a.var_names).astype(float)


def _top_count(n_genes: int, top: int = TOP_SVG) -> int:
    """The number of top genes compared: ``top``, or half the genes where fewer than ``2 * top`` are scored."""
    return int(min(top, max(1, n_genes // 2)))


def svg_agreement(scores, reference, *, top: int = TOP_SVG) -> dict:
    """Spearman of per-gene scores (e.g. Moran's I) against the reference's and the overlap (share) of the top genes; genes shared by both, NaN scores dropped."""
    from ..metrics import spearman

    s = pd.Series(scores, dtype=float)
    r = pd.Series(reference, dtype=float)
    genes = s.index.intersection(r.index)
    s, r = s[genes], r[genes]
    ok = s.notna() & r.notna()
    s, r = s[ok], r[ok]
    n = _top_count(len(s), top)
    if len(s) < 3:
        return {"spearman": float("nan"), "top_overlap": float("nan"), "top": n, "n_genes": int(len(s))}
    rho = spearman(s.to_numpy(), r.to_numpy())
    ts = set(s.sort_values(ascending=False, kind="mergesort").index[:n])
    tr = set(r.sort_values(ascending=False, kind="mergesort").index[:n])
    return {"spearman": float(rho), "top_overlap": len(ts & tr) / n, "top": n, "n_genes": int(len(s))}


# --------------------------------------------------------------------------
# Sepal -> families -> GO:BP
# --------------------------------------------------------------------------
def go_terms(adata, gmt, *, species: str = "human", top: int | None = None, seed: int = SEED, device: str = "cpu") -> dict:
    """Fig. 4's chain on one data set: ``{"ranking", "families", "enrichment", "terms"}`` (``terms``: the set of significant GO terms over all families)."""
    from ._enrich import enrich_families
    from ._families import pattern_families
    from ._patterns_config import PatternsConfig
    from ._sepal import sepal_scores

    top = PatternsConfig.top if top is None else top
    rk = sepal_scores(adata, device=device)
    fam = pattern_families(adata, rk, top=min(top, len(rk)), seed=seed)
    enr = enrich_families(fam, gmt, background=list(rk.index), species=species)
    terms = set(enr.loc[enr["significant"], "term"]) if len(enr) else set()
    return {"ranking": rk, "families": fam, "enrichment": enr, "terms": terms}


def term_agreement(terms, reference_terms) -> dict:
    """Precision (share of ``terms`` in ``reference_terms``) and recall (share of ``reference_terms`` found); NaN where a set is empty."""
    t, r = set(terms), set(reference_terms)
    both = len(t & r)
    return {
        "precision": both / len(t) if t else float("nan"),
        "recall": both / len(r) if r else float("nan"),
        "n_terms": len(t),
        "n_reference_terms": len(r),
        "n_shared": both,
    }


# --------------------------------------------------------------------------
# all of it
# --------------------------------------------------------------------------
def downstream_reference(adata, *, truth=None):
    """The truth at every position of the enhanced lattice, measured and new, as :func:`downstream` takes it.

    ``truth``: finer data's truth (an AnnData or the path of one, ``stentrans
    bin --truth``), restricted to ``adata``'s genes; None: a simulator's
    ``uns["truth"]`` (its counts at every fine position; lost positions
    included, marked new).
    """
    import anndata as ad

    from ._realtruth import _load
    from ._simtruth import truth_columns

    if truth is not None:
        t, src = _load(truth)
        for key in ("array_row", "array_col", "is_imputed"):
            if key not in t.obs:
                raise InputError(src, f'obs["{key}"]', "missing: a truth of `stentrans bin --truth` has it")
        have = set(t.var_names)
        genes = [g for g in adata.var_names if g in have]
        if not genes:
            raise InputError(src, "var_names", f"no gene in common with the {adata.n_vars} measured genes, e.g. {adata.var_names[0]!r}")
        return t[:, genes].copy()
    tr = adata.uns.get("truth")
    if not isinstance(tr, dict):
        raise InputError(adata.uns.get("stentrans", {}).get("source"), 'uns["truth"]', "missing: give the truth of finer data (truth=) or simulated data")
    cols = truth_columns(adata, tr, np.asarray(adata.var_names).astype(str))
    obs = pd.DataFrame({"array_row": np.asarray(tr["array_row"], float), "array_col": np.asarray(tr["array_col"], float), "is_imputed": ~np.asarray(tr["is_measured"], bool)})
    obs.index = obs.index.astype(str)
    ref = ad.AnnData(np.asarray(tr["counts"], dtype=np.float32)[:, cols], obs=obs, var=pd.DataFrame(index=adata.var_names.copy()))
    ref.uns["stentrans"] = {"lattice": adata.uns.get("stentrans", {}).get("lattice")}
    return ref


#: the outputs the workflow's ``downstream`` rule scores (:func:`downstream_outputs` also knows ``"robust-counts"`` and every method of the registry)
DOWNSTREAM_OUTPUTS = ("robust", "linear", "nn", "measured-only")


def downstream_outputs(adata, reference, *, outputs=DOWNSTREAM_OUTPUTS, genes=None, settings: dict | None = None, device="auto") -> dict:
    """Each output enhanced from the measured spots ``adata`` at every position (``{name: AnnData}``, in ``outputs``' order).

    A name of the method registry: ``tl.enhance`` with that method and its
    defaults (the estimate at the measured spots; ``settings[name]`` its
    settings); ``"robust-counts"``: the default's fit with the measured
    counts in X at the measured spots (``--measured counts``);
    ``"robust-shrink"``: the default with ``--measured shrink``;
    ``"measured-only"``: every position of ``reference`` the values of the
    nearest measured spot (:func:`nearest_measured`).
    """
    from ._enhance import enhance

    settings = dict(settings or {})
    fits = {}
    for name in dict.fromkeys(["robust" if o == "robust-counts" else o for o in outputs]):
        if name == "robust-shrink":
            fits[name] = enhance(adata, method="robust", genes=genes, settings=settings.get("robust"), device=device, progress=False, interval=0, measured="shrink")
        elif name != "measured-only":
            fits[name] = enhance(adata, method=name, genes=genes, settings=settings.get(name), device=device, progress=False, interval=0)
    out = {}
    for name in outputs:
        if name == "measured-only":
            out[name] = nearest_measured(reference, adata, genes=genes)
        elif name == "robust-counts":
            b = fits["robust"].copy()
            meas = ~b.obs["is_imputed"].to_numpy(dtype=bool)
            X = _matrix(b)
            X[meas] = _matrix(b, "counts")[meas]
            b.X = X
            out[name] = b
        else:
            out[name] = fits[name]
    return out


def downstream(reference, outputs: dict, *, gmt=None, species: str = "human", measured=None, seed: int = SEED, go: bool = True, methods=DOMAIN_METHODS, svg: bool = True, device: str = "cpu") -> dict:
    """Every downstream score of each output against the reference, on the positions all of them share.

    Parameters
    ----------
    reference
        The truth at every position (raw counts in ``X``, ``obs["is_imputed"]``
        marking the new positions, lattice coordinates).
    outputs
        ``{name: enhanced AnnData}``, each with the reference's genes (others
        are dropped) and at least the reference's positions in common.
    gmt, species
        Gene sets for the GO step (None: no GO scores).
    measured
        The measured spots (an AnnData): their own GO terms (Fig. 4's
        "original") are scored too, as row ``"measured spots"``.
    methods
        The domain clusterings (:func:`domains`).
    svg
        Score spatially variable genes (Moran's I; needs squidpy).

    Returns
    -------
    dict: ``rows`` (one dict per output and the reference itself: mixing and
    its shares, ``ari_kmeans`` / ``ari_leiden`` (and ``_new``: the same
    clusters scored at the new positions alone), ``moran_spearman``,
    ``moran_top_overlap``, ``go_precision`` / ``go_recall`` / ``go_terms``,
    ``pcc_measured`` / ``pcc_new``: the median per-gene PCC against the
    reference at the measured and at the new positions),
    ``ceiling`` (:func:`domain_ceiling`, and the same halves' Moran
    agreement), ``n_positions``, ``n_genes``.
    """
    names = [set(o.var_names) for o in outputs.values()]
    genes = [g for g in reference.var_names if all(g in n for n in names)]
    rows_idx = common_positions(reference, *outputs.values())
    ref = reference[rows_idx, genes].copy()
    outs = {k: align_positions(o, ref, genes=genes) for k, o in outputs.items()}
    is_meas = ~np.asarray(ref.obs["is_imputed"], dtype=bool)
    log.info("downstream: %d positions (%d measured), %d genes, %d outputs", ref.n_obs, int(is_meas.sum()), len(genes), len(outs))

    from ..metrics import pcc

    X_ref = _matrix(ref)
    emb_ref = embed(ref, seed=seed)
    dom_ref = domains(ref, seed=seed, embedding=emb_ref, methods=methods)
    mi_ref = morans_i(ref) if svg else None
    go_ref = go_terms(ref, gmt, species=species, seed=seed, device=device) if (go and gmt is not None) else None

    def row(name, data, emb):
        r = {"output": name, **mixing_shares(data, is_measured=is_meas, embedding=emb, seed=seed)}
        d = domains(data, seed=seed, embedding=emb, methods=methods)
        r.update({f"ari_{m}": ari(d[m], dom_ref[m]) for m in d})
        # the new positions alone: there the truth's counts are no part of any method's input
        r.update({f"ari_{m}_new": ari(d[m][~is_meas], dom_ref[m][~is_meas]) for m in d})
        r.update({f"n_domains_{m}": int(len(np.unique(d[m]))) for m in d})
        # per-gene accuracy beside it: median PCC against the reference at the measured and at the new positions
        X = _matrix(data)
        for where, rows_ in (("measured", is_meas), ("new", ~is_meas)):
            r[f"pcc_{where}"] = float(np.nanmedian(pcc(X[rows_], X_ref[rows_]))) if rows_.sum() > 2 else float("nan")
        if svg:
            sv = svg_agreement(morans_i(data), mi_ref)
            r.update({"moran_spearman": sv["spearman"], "moran_top_overlap": sv["top_overlap"], "moran_top": sv["top"]})
        if go_ref is not None:
            g = go_terms(data, gmt, species=species, seed=seed, device=device)
            r.update({f"go_{k}": v for k, v in term_agreement(g["terms"], go_ref["terms"]).items()})
            r["go_rank_spearman"] = svg_agreement(-g["ranking"]["rank"], -go_ref["ranking"]["rank"])["spearman"]
        return r

    rows = [row("truth", ref, emb_ref)]
    for name, o in outs.items():
        rows.append(row(name, o, None))
    if measured is not None and go_ref is not None:
        have = set(measured.var_names)
        g = go_terms(measured[:, [x for x in genes if x in have]].copy(), gmt, species=species, seed=seed, device=device)
        rows.append({"output": "measured spots", **{f"go_{k}": v for k, v in term_agreement(g["terms"], go_ref["terms"]).items()}, "go_rank_spearman": svg_agreement(-g["ranking"]["rank"], -go_ref["ranking"]["rank"])["spearman"]})

    A, B = binomial_halves(ref, seed=seed)
    ceil = {f"ari_{m}": v for m, v in _halves_ari(A, B, seed, methods).items()}
    if svg:
        ha, hb = ref.copy(), ref.copy()
        ha.X, hb.X = A, B
        sv = svg_agreement(morans_i(ha), morans_i(hb))
        ceil.update({"moran_spearman": sv["spearman"], "moran_top_overlap": sv["top_overlap"]})
    return {"rows": rows, "ceiling": ceil, "n_positions": int(ref.n_obs), "n_measured": int(is_meas.sum()), "n_genes": len(genes), "go_reference_terms": sorted(go_ref["terms"]) if go_ref is not None else None}


def _halves_ari(A, B, seed, methods=DOMAIN_METHODS, **kwargs):
    da, db = domains(A, methods=methods, seed=seed, **kwargs), domains(B, methods=methods, seed=seed, **kwargs)
    return {m: ari(da[m], db[m]) for m in da}


# --------------------------------------------------------------------------
# nested: D(G) as an AnnData
# --------------------------------------------------------------------------
def downsample_spots(adata):
    """``D(G)``: the spots the nested protocol's down-sampling keeps, as an AnnData on its own (coarse) lattice.

    Kept are the spots at grid pixels ``(2i, 2k)`` (hex: ``i + k`` even,
    :func:`stentrans.lattice.kept_mask`); their lattice coordinates become
    ``(i, k)`` plus the parity offset that keeps a hex checkerboard, so
    enhancing the result predicts ``G``'s removed spots at the half steps.
    ``uns["downsample"]`` records the origin: :func:`upsampled_coords`
    carries coordinates back to ``G``.
    """
    from ..grid import grid_of, lattice_of
    from ..lattice import kept_mask

    lattice = lattice_of(adata)
    grid = grid_of(adata)
    p, q = grid.pixels(adata.obs["array_row"].to_numpy(), adata.obs["array_col"].to_numpy())
    M = np.zeros(grid.shape, dtype=bool)
    M[p, q] = True
    keep = kept_mask(M, lattice)[p, q]
    out = adata[keep].copy()
    out.obs["array_row"] = (p[keep] // 2).astype(np.int64)
    out.obs["array_col"] = (q[keep] // 2).astype(np.int64)
    st = dict(out.uns.get("stentrans", {}))
    st.pop("grid", None)
    out.uns["stentrans"] = st
    out.uns["downsample"] = {"row0": float(grid.row0), "col0": float(grid.col0), "step": float(grid.step), "n_spots_G": int(adata.n_obs)}
    return out


def upsampled_coords(adata_d, array_row, array_col) -> tuple[np.ndarray, np.ndarray]:
    """``G``'s lattice coordinates of positions on ``D(G)``'s lattice (half steps of an enhanced ``D(G)`` included)."""
    d = adata_d.uns["downsample"]
    r = d["row0"] + 2 * d["step"] * np.asarray(array_row, dtype=float)
    c = d["col0"] + 2 * d["step"] * np.asarray(array_col, dtype=float)
    return r, c
