"""Pattern families: the top Sepal genes grouped by the shape of their maps.

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

Families are numbered 1, 2, ... by decreasing size. :func:`pair_families`
pairs the families of the measured and the enhanced data one-to-one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import InputError
from ..grid import layer_matrix, source_of
from ..metrics import cross_correlation
from ._patterns_config import PatternsConfig
from ._sepal import spot_graph

__all__ = ["normalized_profiles", "pattern_families", "family_representative", "pair_families", "top_genes", "SMOOTH"]

_P = PatternsConfig()
#: rounds of neighbour averaging of the profiles before PCA and in the maps
SMOOTH = 1


def _smooth_operator(adata) -> sp.csr_matrix:
    """Row-stochastic closed-neighbourhood mean on the spot lattice."""
    A = spot_graph(adata)
    A = sp.csr_matrix(A + sp.identity(A.shape[0], format="csr"))
    d = np.asarray(A.sum(1)).ravel()
    return sp.csr_matrix(sp.diags(1.0 / d) @ A)


def normalized_profiles(adata, genes, layer: str | None = None, smooth: int = SMOOTH, standardize: bool = True) -> np.ndarray:
    """Profiles used for families and representative maps: ``(n_spots, n_genes)``.

    Library-size normalised (totals over *all* genes of ``adata``, scaled to
    the median total), ``log1p``, ``smooth`` rounds of neighbour averaging,
    then (``standardize``) zero mean and unit variance per gene.
    """
    X = layer_matrix(adata, layer)
    totals = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    idx = adata.var_names.get_indexer(list(genes))
    if (idx < 0).any():
        miss = [g for g, i in zip(genes, idx) if i < 0][:5]
        raise InputError(source_of(adata), "genes", f"not in var_names: {miss}")
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


def top_genes(ranking, top, *, adata=None) -> list[str]:
    """The first ``top`` genes of a Sepal ranking (or a list, best first), those in ``adata`` only."""
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
    *,
    top: int = _P.top,
    n_families: int | None = _P.n_families,
    seed: int = _P.seed,
    layer: str | None = None,
    smooth: int = SMOOTH,
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
        Output of :func:`~stentrans.tl.sepal_scores` (or a list of genes, best first).
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

    genes = top_genes(ranking, top, adata=adata)
    g = len(genes)
    if g < 3:
        raise InputError(source_of(adata), "top", f"need at least 3 genes to form families, got {g}")
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
            raise InputError(source_of(adata), "n_families", f"must be in 1..{g}, got {k}")
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


def family_representative(adata, families, *, layer: str | None = None, smooth: int = SMOOTH) -> pd.DataFrame:
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


def pair_families(fam_orig, fam_enh, *, rep_orig: pd.DataFrame | None = None, rep_enh: pd.DataFrame | None = None, alpha: float = 0.5) -> pd.DataFrame:
    """Pair families of original and enhanced data one-to-one (Hungarian).

    Score of a pair = ``alpha * Jaccard(genes) + (1 - alpha) * max(0, r)``
    where ``r`` is the Pearson correlation of the two representative maps
    over the spots both share (rows matched by index label; pass maps
    indexed by lattice position, as :func:`~stentrans.tl.run_patterns` does). Without maps
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
            R = cross_correlation(rep_orig.loc[common, ko].to_numpy(float), rep_enh.loc[common, ke].to_numpy(float))
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
