"""Spatial patterns (paper Fig. 4): Sepal ranking, pattern families, GO enrichment.

The analysis follows the stEnTrans paper, which follows Sepal (Andersson &
Lundeberg 2021): rank genes by diffusion time (:func:`stentrans.sepal.sepal`)
on the measured and on the enhanced data, take the top genes, group them into
pattern families, test each family for GO Biological Process enrichment and
list the terms found only after enhancement.

Pattern families (:func:`pattern_families`)
-------------------------------------------
Sepal's approach: normalised expression profiles of the top genes are reduced
with PCA ("eigenpatterns", genes as observations and spots as features), each
gene is represented by its unit-normalised projection, and the genes are
clustered by the angle between projections (agglomerative clustering,
complete linkage). Here, in order:

1. library-size normalisation (each spot divided by its total over all genes,
   times the median total; as Sepal) followed by ``log1p`` (added: without it
   a handful of high-count spots dominate the eigenpatterns);
2. smoothing: ``smooth`` rounds of averaging every spot with its lattice
   neighbours (added; suppresses Poisson noise at the scale Sepal's diffusion
   time ignores anyway);
3. per-gene standardisation (zero mean, unit variance over spots), so every
   gene's *pattern* weighs the same;
4. PCA, keeping ``n_pcs`` components (default: as many as explain 85 % of the
   variance, Sepal's README setting, capped at 20);
5. agglomerative clustering with complete linkage on the cosine (angular)
   distance between the unit-normalised PCA scores (Sepal);
6. number of families: ``n_families`` when given; otherwise
   ``rule="silhouette"`` (default): the k in 2..``max_families`` with the
   largest mean silhouette width (cosine distance); ``rule="sepal"``: the
   number of eigenpatterns, as the Sepal package does.

Families are numbered 1, 2, ... by decreasing size.

Enrichment (:func:`enrich_families`)
------------------------------------
Hypergeometric test per family with :func:`gseapy.enrich` against a local
GMT. Universe: measured (ranked) genes that occur in at least one gene set of
the GMT; family genes outside that universe are counted as *unmapped* and
reported. Mouse symbols are matched to the human GMT by upper-casing (most
one-to-one orthologues share the symbol). Adjusted p-values are gseapy's
Benjamini-Hochberg values per family (over the terms with at least one family
gene); significant: adjusted p < ``cutoff`` (0.05).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._errors import InputError
from ._utils import atomic_path, write_tsv
from .sepal import _lattice_of, _physical, _source, lattice_coords, normalize_profiles, sepal, spot_graph

log = logging.getLogger("stentrans.patterns")

__all__ = [
    "normalized_profiles",
    "pattern_families",
    "family_representative",
    "pair_families",
    "read_gmt",
    "enrich_families",
    "new_terms",
    "plot_ranked_genes",
    "plot_family_summary",
    "plot_new_terms",
    "run_patterns",
    "register_cli",
    "OKABE_ITO",
]

#: Okabe & Ito (2008) colour-blind-safe palette for categories
OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"]
COLOR_ORIGINAL = "#0072B2"  # Okabe-Ito blue
COLOR_ENHANCED = "#E69F00"  # Okabe-Ito orange
MAP_CMAP = "viridis"


# --------------------------------------------------------------------------
# profiles and families
# --------------------------------------------------------------------------
def _matrix(adata, layer):
    if layer is not None:
        if layer not in adata.layers:
            raise InputError(_source(adata), "layer", f"{layer!r} not in layers {list(adata.layers)}")
        return adata.layers[layer]
    return adata.X


def _smooth_operator(adata) -> sp.csr_matrix:
    """Row-stochastic closed-neighbourhood mean on the spot lattice."""
    A = spot_graph(adata)
    A = sp.csr_matrix(A + sp.identity(A.shape[0], format="csr"))
    d = np.asarray(A.sum(1)).ravel()
    return sp.csr_matrix(sp.diags(1.0 / d) @ A)


def normalized_profiles(adata, genes, layer: str | None = None, smooth: int = 1, standardize: bool = True) -> np.ndarray:
    """Profiles used for families and representative maps: ``(n_spots, n_genes)``.

    Library-size normalised (totals over *all* genes of ``adata``, scaled to
    the median total), ``log1p``, ``smooth`` rounds of neighbour averaging,
    then (``standardize``) zero mean and unit variance per gene.
    """
    X = _matrix(adata, layer)
    totals = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    idx = adata.var_names.get_indexer(list(genes))
    if (idx < 0).any():
        miss = [g for g, i in zip(genes, idx) if i < 0][:5]
        raise InputError(_source(adata), "genes", f"not in var_names: {miss}")
    Y = X[:, idx]
    Y = Y.toarray() if sp.issparse(Y) else np.asarray(Y)
    Y = np.clip(Y.astype(np.float64), 0, None)
    med = np.median(totals[totals > 0]) if (totals > 0).any() else 1.0
    scale = np.divide(med, totals, out=np.zeros_like(totals), where=totals > 0)
    Y = np.log1p(Y * scale[:, None])
    if smooth:
        S = _smooth_operator(adata)
        for _ in range(int(smooth)):
            Y = S @ Y
    if standardize:
        Y = Y - Y.mean(0, keepdims=True)
        sd = Y.std(0, keepdims=True)
        Y = np.divide(Y, sd, out=np.zeros_like(Y), where=sd > 0)
    return Y


def _top_genes(ranking, top, adata=None) -> list[str]:
    if isinstance(ranking, pd.DataFrame):
        r = ranking.sort_values("rank") if "rank" in ranking else ranking
        genes = list(r.index)
    else:
        genes = list(ranking)
    if adata is not None:
        genes = [g for g in genes if g in adata.var_names]
    if not genes:
        raise InputError(None, "ranking", "no ranked genes found in the data")
    return genes[: int(top)]


def pattern_families(
    adata,
    ranking,
    top: int = 150,
    n_families: int | None = None,
    seed: int = 0,
    layer: str | None = None,
    smooth: int = 1,
    rule: str = "silhouette",
    max_families: int = 10,
    var_explained: float = 0.85,
    n_pcs: int | None = None,
    method: str = "agglomerative",
) -> pd.DataFrame:
    """Group the ``top`` ranked genes into pattern families (see module docstring).

    Parameters
    ----------
    adata
        Counts (``X`` or ``layer``) with lattice coordinates.
    ranking
        Output of :func:`stentrans.sepal.sepal` (or a list of genes, best first).
    top
        Number of top genes to group (150 as the paper and Sepal's melanoma run).
    n_families
        Fixed number of families; ``None``: chosen by ``rule``.
    seed
        Seed of k-means (``method="kmeans"``); agglomerative clustering is
        deterministic.
    smooth
        Rounds of neighbour averaging before PCA.
    rule
        ``"silhouette"`` (default): k in 2..``max_families`` maximising the
        mean cosine silhouette; ``"sepal"``: k = number of PCs explaining
        ``var_explained`` of the variance (Sepal's rule).
    var_explained, n_pcs
        PCs kept: ``n_pcs`` if given, else as many as explain
        ``var_explained`` (at most 20).
    method
        ``"agglomerative"`` (complete linkage, cosine; Sepal) or ``"kmeans"``
        (on unit-normalised scores).

    Returns
    -------
    pandas.DataFrame
        Columns ``gene``, ``family`` (1 = largest), ``rank`` (position in the
        ranking). ``attrs``: ``n_families``, ``rule``, ``n_pcs``,
        ``silhouette`` (k -> score).
    """
    from sklearn.cluster import AgglomerativeClustering, KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score

    genes = _top_genes(ranking, top, adata)
    g = len(genes)
    if g < 3:
        raise InputError(_source(adata), "top", f"need at least 3 genes to form families, got {g}")
    Y = normalized_profiles(adata, genes, layer=layer, smooth=smooth)  # spots x genes
    G = Y.T  # genes as observations
    nmax = max(1, min(20, g - 1, G.shape[1]))
    pca = PCA(n_components=nmax, svd_solver="full").fit(G)
    cum = np.cumsum(pca.explained_variance_ratio_)
    if n_pcs is None:
        n_pcs = int(min(nmax, np.searchsorted(cum, var_explained) + 1))
    n_pcs = max(2, min(int(n_pcs), nmax)) if nmax >= 2 else 1
    Z = pca.transform(G)[:, :n_pcs]
    nrm = np.linalg.norm(Z, axis=1, keepdims=True)
    U = np.divide(Z, nrm, out=np.zeros_like(Z), where=nrm > 0)

    def cluster(k):
        if method == "kmeans":
            return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(U)
        if method == "agglomerative":
            return AgglomerativeClustering(n_clusters=k, metric="cosine", linkage="complete").fit_predict(U)
        raise ValueError(f"method must be 'agglomerative' or 'kmeans', got {method!r}")

    sil = {}
    if n_families is not None:
        k = int(n_families)
        if not 1 <= k <= g:
            raise InputError(_source(adata), "n_families", f"must be in 1..{g}, got {k}")
        labels = cluster(k) if k > 1 else np.zeros(g, dtype=int)
        used_rule = "fixed"
    elif rule == "sepal":
        k = int(min(g, n_pcs))
        labels = cluster(k)
        used_rule = "sepal"
    elif rule == "silhouette":
        best = None
        for k in range(2, int(min(max_families, g - 1)) + 1):
            lab = cluster(k)
            if np.unique(lab).size < 2:
                continue
            s = float(silhouette_score(U, lab, metric="cosine"))
            sil[k] = s
            if best is None or s > best[0] + 1e-12:
                best = (s, k, lab)
        if best is None:
            labels, k = np.zeros(g, dtype=int), 1
        else:
            _, k, labels = best
        used_rule = "silhouette"
    else:
        raise ValueError(f"rule must be 'silhouette' or 'sepal', got {rule!r}")
    # renumber 1..K by decreasing size (ties: first gene's rank)
    labs, counts = np.unique(labels, return_counts=True)
    first = np.array([np.flatnonzero(labels == lab)[0] for lab in labs])
    order = labs[np.lexsort((first, -counts))]
    remap = {int(old): i + 1 for i, old in enumerate(order)}
    fam = np.array([remap[int(x)] for x in labels])
    out = pd.DataFrame({"gene": genes, "family": fam, "rank": np.arange(1, g + 1)})
    out.attrs.update({"n_families": int(np.unique(fam).size), "rule": used_rule, "n_pcs": int(n_pcs), "silhouette": {int(a): b for a, b in sil.items()}, "smooth": int(smooth), "method": method})
    return out


def _families_map(families) -> dict:
    """``{family: [genes]}`` from a families DataFrame or a mapping."""
    if isinstance(families, pd.DataFrame):
        if "gene" in families and "family" in families:
            return {k: list(v) for k, v in families.groupby("family", sort=True)["gene"]}
        raise InputError(None, "families", "need columns 'gene' and 'family'")
    return {k: list(v) for k, v in dict(families).items()}


def family_representative(adata, families, layer: str | None = None, smooth: int = 1) -> pd.DataFrame:
    """Representative map per family: mean of its genes' normalised profiles.

    Returns a DataFrame (index: ``obs_names``, one column per family) of the
    standardised, smoothed profiles of :func:`normalized_profiles` averaged
    over the family's genes.
    """
    fm = _families_map(families)
    allg = [g for v in fm.values() for g in v]
    Y = normalized_profiles(adata, allg, layer=layer, smooth=smooth)
    pos = {g: i for i, g in enumerate(allg)}
    rep = {k: Y[:, [pos[g] for g in v]].mean(1) for k, v in fm.items()}
    return pd.DataFrame(rep, index=adata.obs_names)


def _coord_index(adata) -> pd.Index:
    """Spot labels by lattice position (same for measured spots of enhanced data)."""
    r = np.asarray(adata.obs["array_row"], dtype=float)
    c = np.asarray(adata.obs["array_col"], dtype=float)
    return pd.Index([f"{a:g}_{b:g}" for a, b in zip(r, c)])


def pair_families(fam_orig, fam_enh, rep_orig: pd.DataFrame | None = None, rep_enh: pd.DataFrame | None = None, alpha: float = 0.5) -> pd.DataFrame:
    """Pair families of original and enhanced data one-to-one (Hungarian).

    Score of a pair = ``alpha * Jaccard(genes) + (1 - alpha) * max(0, r)``
    where ``r`` is the Pearson correlation of the two representative maps
    over the spots both share (rows matched by index label; pass maps
    indexed by lattice position, as :func:`run_patterns` does). Without maps
    the score is the Jaccard index. :func:`scipy.optimize.linear_sum_assignment`
    maximises the total score; families left over (unequal numbers) appear
    with a missing partner.

    Returns
    -------
    DataFrame with ``family_original``, ``family_enhanced``, ``n_shared``,
    ``jaccard``, ``correlation``, ``score``.
    """
    from scipy.optimize import linear_sum_assignment

    fo, fe = _families_map(fam_orig), _families_map(fam_enh)
    ko, ke = list(fo), list(fe)
    J = np.zeros((len(ko), len(ke)))
    N = np.zeros((len(ko), len(ke)), dtype=int)
    for i, a in enumerate(ko):
        for j, b in enumerate(ke):
            sa, sb = set(fo[a]), set(fe[b])
            N[i, j] = len(sa & sb)
            J[i, j] = N[i, j] / max(1, len(sa | sb))
    R = np.full_like(J, np.nan)
    if rep_orig is not None and rep_enh is not None:
        common = rep_orig.index.intersection(rep_enh.index)
        if len(common) >= 3:
            A = rep_orig.loc[common, ko].to_numpy(float)
            B = rep_enh.loc[common, ke].to_numpy(float)
            A = (A - A.mean(0)) / np.where(A.std(0) > 0, A.std(0), 1)
            B = (B - B.mean(0)) / np.where(B.std(0) > 0, B.std(0), 1)
            R = A.T @ B / len(common)
    score = J if np.isnan(R).all() else alpha * J + (1 - alpha) * np.clip(np.nan_to_num(R), 0, None)
    rows = []
    if len(ko) and len(ke):
        ri, ci = linear_sum_assignment(-score)
        for i, j in zip(ri, ci):
            rows.append({"family_original": ko[i], "family_enhanced": ke[j], "n_shared": int(N[i, j]), "jaccard": J[i, j], "correlation": R[i, j], "score": score[i, j]})
        paired_o = set(ri)
        paired_e = set(ci)
    else:
        paired_o, paired_e = set(), set()
    for i, a in enumerate(ko):
        if i not in paired_o:
            rows.append({"family_original": a, "family_enhanced": pd.NA, "n_shared": 0, "jaccard": np.nan, "correlation": np.nan, "score": np.nan})
    for j, b in enumerate(ke):
        if j not in paired_e:
            rows.append({"family_original": pd.NA, "family_enhanced": b, "n_shared": 0, "jaccard": np.nan, "correlation": np.nan, "score": np.nan})
    out = pd.DataFrame(rows, columns=["family_original", "family_enhanced", "n_shared", "jaccard", "correlation", "score"])
    out["family_original"] = out["family_original"].astype("Int64")
    out["family_enhanced"] = out["family_enhanced"].astype("Int64")
    return out


# --------------------------------------------------------------------------
# enrichment
# --------------------------------------------------------------------------
def read_gmt(path) -> dict[str, list[str]]:
    """Read a GMT file (``name<TAB>description<TAB>gene...``) into ``{name: genes}``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "gene set file not found")
    sets: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            parts = line.rstrip("\n\r").split("\t")
            if len(parts) < 3 or not parts[0]:
                if line.strip():
                    raise InputError(path, f"line {i}", "expected 'name<TAB>description<TAB>gene...'")
                continue
            sets[parts[0]] = [g for g in parts[2:] if g]
    if not sets:
        raise InputError(path, None, "no gene sets in file")
    return sets


def _to_query(genes, species: str) -> list[str]:
    if species not in ("human", "mouse"):
        raise InputError(None, "species", f"must be 'human' or 'mouse', got {species!r}")
    # human symbols are upper case already; mouse symbols map case-insensitively
    return [str(g).upper() for g in genes]


def enrich_families(families, gmt, background, species: str = "human", cutoff: float = 0.05) -> pd.DataFrame:
    """GO enrichment of every family with :func:`gseapy.enrich` (hypergeometric).

    Parameters
    ----------
    families
        Output of :func:`pattern_families` (or ``{family: genes}``).
    gmt
        Path of a GMT file or ``{term: genes}``; e.g.
        ``../shared/genesets/GO_BP_human_propagated.gmt``.
    background
        All measured (ranked) genes. The universe is the part of it found in
        the GMT; family genes outside the universe are counted as unmapped.
    species
        ``"human"`` or ``"mouse"`` (symbols upper-cased to match the human GMT).
    cutoff
        Adjusted p below which a term is significant.

    Returns
    -------
    pandas.DataFrame
        One row per (family, term with >= 1 family gene): ``family``,
        ``term``, ``overlap``, ``p_value``, ``adj_p``, ``odds_ratio``,
        ``genes``, ``significant``; sorted by family and adjusted p.
        ``attrs["mapping"]``: per family ``n_genes``, ``n_mapped``,
        ``n_unmapped``; ``attrs["universe"]``: universe size.
    """
    import gseapy

    sets = read_gmt(gmt) if isinstance(gmt, (str, os.PathLike)) else {str(k): list(v) for k, v in dict(gmt).items()}
    sets = {k: sorted({str(g).upper() for g in v}) for k, v in sets.items()}
    annotated = set().union(*sets.values()) if sets else set()
    bg = set(_to_query(background, species))
    universe = bg & annotated
    n_bg_unmapped = len(bg - annotated)
    sets_u = {k: [g for g in v if g in universe] for k, v in sets.items()}
    sets_u = {k: v for k, v in sets_u.items() if v}
    fm = _families_map(families)
    cols = ["family", "term", "overlap", "p_value", "adj_p", "odds_ratio", "genes", "significant"]
    frames, mapping = [], {}
    for fam, genes in fm.items():
        q = sorted(set(_to_query(genes, species)))
        mapped = [g for g in q if g in universe]
        mapping[int(fam) if str(fam).lstrip("-").isdigit() else fam] = {"n_genes": len(genes), "n_mapped": len(mapped), "n_unmapped": len(q) - len(mapped)}
        if not mapped or not sets_u:
            continue
        enr = gseapy.enrich(gene_list=mapped, gene_sets=sets_u, background=sorted(universe), outdir=None, cutoff=cutoff, no_plot=True, verbose=False)
        res = getattr(enr, "results", None)
        if not isinstance(res, pd.DataFrame) or res.empty:
            continue
        df = pd.DataFrame(
            {
                "family": fam,
                "term": res["Term"].astype(str),
                "overlap": res["Overlap"].astype(str),
                "p_value": res["P-value"].astype(float),
                "adj_p": res["Adjusted P-value"].astype(float),
                "odds_ratio": res["Odds Ratio"].astype(float),
                "genes": res["Genes"].astype(str),
            }
        )
        df["significant"] = df["adj_p"] < cutoff
        frames.append(df.sort_values(["adj_p", "p_value", "term"]))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)
    out = out[cols]
    out.attrs.update({"mapping": mapping, "universe": len(universe), "background_unmapped": n_bg_unmapped, "cutoff": float(cutoff), "species": species})
    n_unm = sum(v["n_unmapped"] for v in mapping.values())
    log.info("enrichment: universe %d genes (%d measured genes not in the GMT); %d family genes unmapped", len(universe), n_bg_unmapped, n_unm)
    return out


def new_terms(enr_orig: pd.DataFrame, enr_enh: pd.DataFrame, pairs: pd.DataFrame | None = None) -> pd.DataFrame:
    """GO terms significant only after enhancement.

    * ``scope="overall"``: significant in some enhanced family and in no
      original family (one row per term, with its best enhanced family);
    * ``scope="paired"`` (when ``pairs`` from :func:`pair_families` is
      given): significant in an enhanced family but not in the original
      family paired with it.

    Columns: ``scope``, ``family_enhanced``, ``family_original``, ``term``,
    ``adj_p`` (enhanced), ``adj_p_original`` (best original adjusted p of the
    term in the compared family/families; NaN if not tested), ``overlap``,
    ``genes``.
    """
    cols = ["scope", "family_enhanced", "family_original", "term", "adj_p", "adj_p_original", "overlap", "genes"]
    sig_e = enr_enh[enr_enh["significant"].astype(bool)] if len(enr_enh) else enr_enh
    sig_o = enr_orig[enr_orig["significant"].astype(bool)] if len(enr_orig) else enr_orig
    rows = []
    if len(sig_e):
        orig_terms = set(sig_o["term"]) if len(sig_o) else set()
        best_o = enr_orig.groupby("term")["adj_p"].min() if len(enr_orig) else pd.Series(dtype=float)
        overall = sig_e[~sig_e["term"].isin(orig_terms)].sort_values("adj_p").drop_duplicates("term")
        for _, r in overall.iterrows():
            rows.append({"scope": "overall", "family_enhanced": r["family"], "family_original": pd.NA, "term": r["term"], "adj_p": r["adj_p"], "adj_p_original": best_o.get(r["term"], np.nan), "overlap": r["overlap"], "genes": r["genes"]})
        if pairs is not None and len(pairs):
            for _, pr in pairs.dropna(subset=["family_enhanced"]).iterrows():
                fe, fo = pr["family_enhanced"], pr["family_original"]
                e = sig_e[sig_e["family"] == fe]
                if pd.isna(fo):
                    o_all = enr_orig.iloc[0:0]
                else:
                    o_all = enr_orig[enr_orig["family"] == fo] if len(enr_orig) else enr_orig
                o_sig = set(o_all.loc[o_all["significant"].astype(bool), "term"]) if len(o_all) else set()
                o_best = o_all.groupby("term")["adj_p"].min() if len(o_all) else pd.Series(dtype=float)
                for _, r in e[~e["term"].isin(o_sig)].sort_values("adj_p").iterrows():
                    rows.append({"scope": "paired", "family_enhanced": fe, "family_original": fo, "term": r["term"], "adj_p": r["adj_p"], "adj_p_original": o_best.get(r["term"], np.nan), "overlap": r["overlap"], "genes": r["genes"]})
    out = pd.DataFrame(rows, columns=cols)
    out["family_enhanced"] = out["family_enhanced"].astype("Int64")
    out["family_original"] = out["family_original"].astype("Int64")
    return out


# --------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------
def _save_figure(fig, stem) -> list[str]:
    """Write ``stem.png`` and ``stem.pdf`` atomically; return the paths."""
    import matplotlib.pyplot as plt

    from .plotting import save_figure

    paths = [str(p) for p in save_figure(fig, stem, dpi=200)]
    plt.close(fig)
    return paths


def _spot_patches(adata):
    """Polygons of the spots (squares or pointy-top hexagons) in measured-spot units."""
    lattice = _lattice_of(adata)
    row, col, f = lattice_coords(adata)
    xy = _physical(row, col, lattice) / f
    xy[:, 1] *= -1  # rows grow downwards, as on the slide
    a = 1.0 / f  # centre-to-centre distance of neighbours
    if lattice == "square":
        ang = np.deg2rad([45, 135, 225, 315])
        rad = a / np.sqrt(2)
    else:
        ang = np.deg2rad([30, 90, 150, 210, 270, 330])
        rad = a / np.sqrt(3)
    shape = np.column_stack([np.cos(ang), np.sin(ang)]) * rad
    return xy[:, None, :] + shape[None, :, :], xy


def _draw_map(ax, adata, values, cmap=MAP_CMAP, vmin=None, vmax=None):
    from matplotlib.collections import PolyCollection

    polys, xy = _spot_patches(adata)
    pc = PolyCollection(polys, array=np.asarray(values, float), cmap=cmap, edgecolors="none", linewidths=0)
    if vmin is not None or vmax is not None:
        pc.set_clim(vmin, vmax)
    ax.add_collection(pc)
    pad = 1.0
    ax.set_xlim(xy[:, 0].min() - pad, xy[:, 0].max() + pad)
    ax.set_ylim(xy[:, 1].min() - pad, xy[:, 1].max() + pad)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    return pc


def _gene_values(adata, gene, layer=None):
    X = _matrix(adata, layer)
    j = adata.var_names.get_loc(gene)
    x = X[:, j]
    x = x.toarray().ravel() if sp.issparse(x) else np.asarray(x).ravel()
    return normalize_profiles(x[:, None])[:, 0]


def plot_ranked_genes(adata, ranking, enhanced=None, ranking_enhanced=None, genes=None, n: int = 6, path=None, layer=None, enhanced_layer=None):
    """Paper Fig. 4B: maps of top-ranked genes, original vs enhanced, with ranks.

    Each panel shows Sepal's input ``log2(x + 2) / max`` of one gene, drawn
    as squares (ST) or hexagons (Visium) of the lattice spacing (half of it
    for enhanced data), colour map viridis; the title gives the gene's Sepal
    rank in that data set. Default genes: the top ``n`` of the original
    ranking. Written to ``path.png`` and ``path.pdf`` when ``path`` is given
    (without extension). Returns the figure (closed when saved).
    """
    import matplotlib.pyplot as plt

    if genes is None:
        genes = _top_genes(ranking, n, adata)
        if enhanced is not None:
            genes = [g for g in genes if g in enhanced.var_names][:n]
    genes = list(genes)
    ncol = 2 if enhanced is not None else 1
    fig, axes = plt.subplots(len(genes), ncol, figsize=(2.6 * ncol + 0.6, 2.4 * len(genes)), squeeze=False)
    rk_o = ranking["rank"] if isinstance(ranking, pd.DataFrame) else pd.Series(np.arange(1, len(ranking) + 1), index=list(ranking))
    rk_e = None
    if ranking_enhanced is not None:
        rk_e = ranking_enhanced["rank"] if isinstance(ranking_enhanced, pd.DataFrame) else pd.Series(np.arange(1, len(ranking_enhanced) + 1), index=list(ranking_enhanced))
    for i, g in enumerate(genes):
        pc = _draw_map(axes[i, 0], adata, _gene_values(adata, g, layer), vmin=0, vmax=1)
        r = rk_o.get(g, np.nan)
        axes[i, 0].set_title(f"{g}  (original rank {int(r) if pd.notna(r) else '-'})", fontsize=9)
        if enhanced is not None:
            if g in enhanced.var_names:
                _draw_map(axes[i, 1], enhanced, _gene_values(enhanced, g, enhanced_layer), vmin=0, vmax=1)
            r = rk_e.get(g, np.nan) if rk_e is not None else np.nan
            axes[i, 1].set_title(f"{g}  (enhanced rank {int(r) if pd.notna(r) else '-'})", fontsize=9)
    fig.colorbar(pc, ax=axes.ravel().tolist(), shrink=0.5, label="log2(x + 2) / max")
    if path is not None:
        _save_figure(fig, path)
    return fig


def _family_counts(fam, enr):
    sizes = fam.groupby("family").size() if len(fam) else pd.Series(dtype=int)
    sig = enr[enr["significant"].astype(bool)].groupby("family").size() if enr is not None and len(enr) else pd.Series(dtype=int)
    return sizes, sig.reindex(sizes.index, fill_value=0)


def plot_family_summary(fam_orig, fam_enh=None, enr_orig=None, enr_enh=None, pairs=None, path=None):
    """Paper Fig. 4C: genes and significant GO terms per family, original vs enhanced.

    With ``pairs`` (from :func:`pair_families`) paired families share an
    x position (label ``O<i>/E<j>``); otherwise families are placed by number.
    Okabe-Ito blue = original, orange = enhanced.
    """
    import matplotlib.pyplot as plt

    so, to = _family_counts(fam_orig, enr_orig)
    if fam_enh is not None:
        se, te = _family_counts(fam_enh, enr_enh)
    else:
        se, te = pd.Series(dtype=int), pd.Series(dtype=int)
    if pairs is not None and len(pairs):
        slots = [(r.family_original if pd.notna(r.family_original) else None, r.family_enhanced if pd.notna(r.family_enhanced) else None) for r in pairs.itertuples()]
        slots.sort(key=lambda s: (s[0] is None, s[0] if s[0] is not None else 0, s[1] if s[1] is not None else 0))
    else:
        ks = sorted(set(so.index) | set(se.index))
        slots = [(k if k in so.index else None, k if k in se.index else None) for k in ks]
    labels = [f"O{a if a is not None else '-'}/E{b if b is not None else '-'}" if fam_enh is not None else f"F{a}" for a, b in slots]
    x = np.arange(len(slots))
    w = 0.38 if fam_enh is not None else 0.6
    fig, axes = plt.subplots(1, 2, figsize=(max(6, 1.1 * len(slots) * 2), 3.4))
    for ax, (vo, ve), ttl in zip(axes, [(so, se), (to, te)], ["genes per family", "significant GO:BP terms"]):
        yo = [vo.get(a, 0) if a is not None else 0 for a, _ in slots]
        ax.bar(x - (w / 2 if fam_enh is not None else 0), yo, w, color=COLOR_ORIGINAL, label="original")
        if fam_enh is not None:
            ye = [ve.get(b, 0) if b is not None else 0 for _, b in slots]
            ax.bar(x + w / 2, ye, w, color=COLOR_ENHANCED, label="enhanced")
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=45 if len(slots) > 6 else 0, ha="right" if len(slots) > 6 else "center")
        ax.set_title(ttl, fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_ylabel("count")
    axes[0].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    if path is not None:
        _save_figure(fig, path)
    return fig


def plot_new_terms(new: pd.DataFrame, path=None, top: int = 10, scope: str = "paired"):
    """Paper Fig. 4D: top ``top`` GO terms found only in the enhanced data, per family.

    Bars: ``-log10`` adjusted p in the enhanced family. Uses rows of
    ``scope`` (``"paired"``; falls back to ``"overall"`` when there are none).
    """
    import matplotlib.pyplot as plt
    import textwrap

    d = new[new["scope"] == scope] if len(new) else new
    if not len(d) and len(new):
        d = new[new["scope"] == "overall"]
    fams = sorted(d["family_enhanced"].dropna().unique()) if len(d) else []
    if not fams:
        fig, ax = plt.subplots(figsize=(5, 1.5))
        ax.text(0.5, 0.5, "no GO:BP term significant only in the enhanced data", ha="center", va="center", fontsize=9)
        ax.axis("off")
    else:
        heights = [min(top, (d["family_enhanced"] == f).sum()) for f in fams]
        fig, axes = plt.subplots(len(fams), 1, figsize=(7.5, 0.9 + 0.32 * sum(heights) + 0.5 * len(fams)), squeeze=False, gridspec_kw={"height_ratios": [max(1, h) for h in heights]})
        for ax, f in zip(axes[:, 0], fams):
            col = OKABE_ITO[(int(f) - 1) % len(OKABE_ITO)]
            s = d[d["family_enhanced"] == f].nsmallest(top, "adj_p")
            y = np.arange(len(s))[::-1]
            ax.barh(y, -np.log10(s["adj_p"].clip(lower=1e-300)), color=col)
            ax.set_yticks(y)
            ax.set_yticklabels(["\n".join(textwrap.wrap(t, 60)) for t in s["term"]], fontsize=7)
            ax.set_title(f"enhanced family {f}", fontsize=9, loc="left")
            ax.spines[["top", "right"]].set_visible(False)
        axes[-1, 0].set_xlabel("-log10 adjusted p")
        fig.tight_layout()
    if path is not None:
        _save_figure(fig, path)
    return fig


# --------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------
def _write_tsv(df: pd.DataFrame, path, index=False):
    return str(write_tsv(df, path, index=index))


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating, float)):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if o is pd.NA:
        return None
    return o


def run_patterns(
    adata,
    enhanced=None,
    gmt=None,
    top: int = 150,
    outdir=".",
    species: str = "human",
    seed: int = 0,
    layer: str | None = None,
    enhanced_layer: str | None = None,
    n_families: int | None = None,
    device="auto",
    cutoff: float = 0.05,
    plots: bool = True,
) -> dict:
    """Paper Fig. 4 end to end: Sepal ranking, families, enrichment, new terms, figures.

    ``adata``: measured counts, already filtered (e.g. :func:`stentrans.pp.filter`,
    genes detected in > 10 % of spots); ``enhanced``: the enhanced AnnData
    (genes shared with ``adata`` are used). Writes to ``outdir``:

    * ``ranking.tsv``: gene, diffusion_time, converged, rank_original,
      diffusion_time_enhanced, rank_enhanced (rank among shared genes);
    * ``families_original.tsv`` / ``families_enhanced.tsv``;
    * ``enrichment_original.tsv`` / ``enrichment_enhanced.tsv`` (with ``gmt``);
    * ``family_pairs.tsv``, ``new_terms.tsv`` (with ``enhanced``);
    * ``summary.json``: top-10 genes, converged fractions, family sizes,
      significant terms per family, unmapped genes, number of new terms,
      seconds per stage, parameters;
    * figures ``fig4b_ranked_genes``, ``fig4c_family_summary``,
      ``fig4d_new_terms`` (PNG + PDF).

    All files are written atomically. Returns a dict with the tables, the
    summary and the written paths.
    """
    t_all = time.perf_counter()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    secs: dict[str, float] = {}
    files: list[str] = []

    t = time.perf_counter()
    rk_o = sepal(adata, layer=layer, device=device)
    secs["sepal_original"] = time.perf_counter() - t
    rk_e = None
    if enhanced is not None:
        shared = [g for g in adata.var_names if g in set(enhanced.var_names)]
        if not shared:
            raise InputError(_source(enhanced), "var_names", "no genes shared with the measured data")
        t = time.perf_counter()
        rk_e = sepal(enhanced, genes=shared, layer=enhanced_layer, device=device)
        secs["sepal_enhanced"] = time.perf_counter() - t

    ranking = pd.DataFrame({"gene": rk_o.index, "diffusion_time": rk_o["diffusion_time"].to_numpy(), "converged": rk_o["converged"].to_numpy(), "rank_original": rk_o["rank"].to_numpy()})
    if rk_e is not None:
        ranking["diffusion_time_enhanced"] = rk_e["diffusion_time"].reindex(ranking["gene"]).to_numpy()
        ranking["rank_enhanced"] = rk_e["rank"].reindex(ranking["gene"]).astype("Int64").to_numpy()
    files.append(_write_tsv(ranking, outdir / "ranking.tsv"))

    t = time.perf_counter()
    fam_o = pattern_families(adata, rk_o, top=top, n_families=n_families, seed=seed, layer=layer)
    files.append(_write_tsv(fam_o, outdir / "families_original.tsv"))
    fam_e = pairs = None
    if rk_e is not None:
        fam_e = pattern_families(enhanced, rk_e, top=top, n_families=n_families, seed=seed, layer=enhanced_layer)
        files.append(_write_tsv(fam_e, outdir / "families_enhanced.tsv"))
        rep_o = family_representative(adata, fam_o, layer=layer)
        rep_e = family_representative(enhanced, fam_e, layer=enhanced_layer)
        rep_o.index = _coord_index(adata)
        rep_e.index = _coord_index(enhanced)
        pairs = pair_families(fam_o, fam_e, rep_o, rep_e)
        files.append(_write_tsv(pairs, outdir / "family_pairs.tsv"))
    secs["families"] = time.perf_counter() - t

    enr_o = enr_e = new = None
    if gmt is not None:
        t = time.perf_counter()
        sets = read_gmt(gmt) if isinstance(gmt, (str, os.PathLike)) else gmt
        enr_o = enrich_families(fam_o, sets, background=list(rk_o.index), species=species, cutoff=cutoff)
        files.append(_write_tsv(enr_o, outdir / "enrichment_original.tsv"))
        if fam_e is not None:
            enr_e = enrich_families(fam_e, sets, background=list(rk_e.index), species=species, cutoff=cutoff)
            files.append(_write_tsv(enr_e, outdir / "enrichment_enhanced.tsv"))
            new = new_terms(enr_o, enr_e, pairs)
            files.append(_write_tsv(new, outdir / "new_terms.tsv"))
        secs["enrichment"] = time.perf_counter() - t

    if plots:
        t = time.perf_counter()
        fig = plot_ranked_genes(adata, rk_o, enhanced, rk_e, n=6, layer=layer, enhanced_layer=enhanced_layer)
        files += _save_figure(fig, outdir / "fig4b_ranked_genes")
        fig = plot_family_summary(fam_o, fam_e, enr_o, enr_e, pairs)
        files += _save_figure(fig, outdir / "fig4c_family_summary")
        if new is not None:
            fig = plot_new_terms(new, top=10)
            files += _save_figure(fig, outdir / "fig4d_new_terms")
        secs["plots"] = time.perf_counter() - t
    secs["total"] = time.perf_counter() - t_all

    def fam_info(fam, enr):
        sizes, sig = _family_counts(fam, enr)
        d = {"sizes": {int(k): int(v) for k, v in sizes.items()}, "n_families": int(fam.attrs.get("n_families", sizes.size)), "rule": fam.attrs.get("rule"), "n_pcs": fam.attrs.get("n_pcs")}
        if enr is not None:
            d["significant_terms"] = {int(k): int(v) for k, v in sig.items()}
            d["unmapped_genes"] = {k: v["n_unmapped"] for k, v in enr.attrs.get("mapping", {}).items()}
            d["universe"] = enr.attrs.get("universe")
        return d

    summary = {
        "n_spots": {"original": int(adata.n_obs)},
        "n_genes_ranked": {"original": int(len(rk_o))},
        "top": int(top),
        "species": species,
        "seed": int(seed),
        "top10": {"original": list(rk_o.index[:10])},
        "converged_fraction": {"original": float(rk_o["converged"].mean())},
        "sepal": {k: rk_o.attrs.get(k) for k in ("lattice", "dt", "thresh", "max_iter", "h", "pseudocount", "n_saturated")},
        "families": {"original": fam_info(fam_o, enr_o)},
        "seconds": secs,
    }
    if rk_e is not None:
        summary["n_spots"]["enhanced"] = int(enhanced.n_obs)
        summary["n_genes_ranked"]["enhanced"] = int(len(rk_e))
        summary["top10"]["enhanced"] = list(rk_e.index[:10])
        summary["converged_fraction"]["enhanced"] = float(rk_e["converged"].mean())
        summary["sepal_enhanced"] = {k: rk_e.attrs.get(k) for k in ("lattice", "dt", "coordinate_factor", "n_saturated")}
        summary["families"]["enhanced"] = fam_info(fam_e, enr_e)
        summary["pairs"] = _jsonable(pairs.to_dict(orient="records"))
        from scipy.stats import spearmanr

        both = ranking.dropna(subset=["rank_enhanced"])
        summary["rank_spearman"] = float(spearmanr(both["rank_original"], both["rank_enhanced"].astype(float))[0]) if len(both) > 2 else None
    if new is not None:
        summary["n_new_terms"] = {"overall": int((new["scope"] == "overall").sum()), "paired": int((new["scope"] == "paired").sum())}
    summary_path = outdir / "summary.json"
    with atomic_path(summary_path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(_jsonable(summary), indent=2))
    files.append(str(summary_path))
    log.info("patterns: wrote %d files to %s in %.1f s", len(files), outdir, secs["total"])
    return {"ranking": ranking, "ranking_original": rk_o, "ranking_enhanced": rk_e, "families_original": fam_o, "families_enhanced": fam_e, "pairs": pairs, "enrichment_original": enr_o, "enrichment_enhanced": enr_e, "new_terms": new, "summary": summary, "files": files}


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------
def register_cli(subparsers) -> None:
    """``stentrans patterns INPUT [--enhanced E.h5ad] [--gmt FILE] [--top 150] [--species human|mouse] -o DIR``."""
    p = subparsers.add_parser(
        "patterns",
        help="Sepal ranking, pattern families and GO enrichment (paper Fig. 4)",
        description="Rank genes by Sepal diffusion time on the measured (and enhanced) data, group the top genes into pattern families, test them for GO:BP enrichment and list terms found only after enhancement.",
    )
    p.add_argument("input", metavar="INPUT", help="measured data (anything stentrans.read accepts)")
    p.add_argument("--enhanced", metavar="ENHANCED.h5ad", help="enhanced AnnData from 'stentrans enhance'")
    p.add_argument("--gmt", metavar="FILE", help="gene sets (GMT), e.g. GO_BP_human_propagated.gmt; without it no enrichment")
    p.add_argument("--top", type=int, default=150, help="top-ranked genes grouped into families (default 150)")
    p.add_argument("--species", choices=("human", "mouse"), default="human", help="mouse symbols are upper-cased to match a human GMT")
    p.add_argument("--min-spot-fraction", type=float, default=0.1, help="keep genes detected in more than this fraction of spots (default 0.1)")
    p.add_argument("--n-families", type=int, default=None, help="fixed number of families (default: silhouette rule)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("-o", "--outdir", required=True, metavar="DIR")
    p.set_defaults(func=_cli_run)


def _cli_run(args) -> int:
    from . import pp
    from .io import read

    if args.top < 3:
        raise InputError(None, "--top", f"must be >= 3, got {args.top}")
    adata = read(args.input)
    adata = pp.qc(adata, min_spot_fraction=args.min_spot_fraction)
    enhanced = None
    if args.enhanced:
        import anndata

        if not Path(args.enhanced).is_file():
            raise InputError(args.enhanced, None, "file not found")
        enhanced = anndata.read_h5ad(args.enhanced)
        st = enhanced.uns.get("stentrans")
        if isinstance(st, dict):
            st.setdefault("source", str(args.enhanced))
        _lattice_of(enhanced)
    if args.gmt and not Path(args.gmt).is_file():
        raise InputError(args.gmt, None, "gene set file not found")
    # pp.filter keeps raw counts in layers["counts"] (X may be normalised);
    # the enhanced X is on the scale the model was trained on (counts by default)
    layer = "counts" if "counts" in adata.layers else None
    res = run_patterns(adata, enhanced=enhanced, gmt=args.gmt, top=args.top, outdir=args.outdir, species=args.species, seed=args.seed, n_families=args.n_families, device=args.device, layer=layer)
    s = res["summary"]
    print(f"top-10 (original): {', '.join(s['top10']['original'])}")
    if "enhanced" in s["top10"]:
        print(f"top-10 (enhanced): {', '.join(s['top10']['enhanced'])}")
    print(f"wrote {len(res['files'])} files to {args.outdir}")
    return 0
