"""GO:BP enrichment of pattern families and the terms found only after enhancement.

Hypergeometric test per family with :func:`gseapy.enrich` against a local
GMT. Universe: measured (ranked) genes that occur in at least one gene set of
the GMT; family genes outside that universe are counted as *unmapped* and
reported. Mouse symbols are matched to the human GMT by upper-casing (most
one-to-one orthologues share the symbol). Adjusted p-values are gseapy's
Benjamini-Hochberg values per family (over the terms with at least one family
gene); significant: adjusted p < ``cutoff`` (0.05).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import InputError
from ._families import _families_map
from ._patterns_config import SPECIES, PatternsConfig

log = logging.getLogger("stentrans.patterns")

__all__ = ["read_gmt", "enrich_families", "new_terms", "family_counts"]

_P = PatternsConfig()


#: leading bytes of compressed files a GMT path may hold by mistake
_COMPRESSED = {b"\x1f\x8b": "gzip", b"PK\x03\x04": "zip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}


def read_gmt(path) -> dict[str, list[str]]:
    """Read a GMT file (``name<TAB>description<TAB>gene...``) into ``{name: genes}``.

    A file that is not UTF-8 text (compressed, binary) or has a malformed
    line is an :class:`~stentrans.InputError` naming the file (and the line).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "gene set file not found")
    data = path.read_bytes()
    for magic, kind in _COMPRESSED.items():
        if data.startswith(magic):
            raise InputError(path, None, f"{kind}-compressed data, not a text GMT file; decompress it first")
    nul = data.find(b"\0")
    if nul >= 0:
        raise InputError(path, None, f"binary data (NUL byte at offset {nul}), not a text GMT file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raw = err.object  # the bytes the offsets refer to
        line = raw.count(b"\n", 0, err.start) + 1
        raise InputError(path, f"line {line}", f"not UTF-8 text (byte 0x{raw[err.start]:02x}); expected a text GMT file") from None
    sets: dict[str, list[str]] = {}
    for i, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        parts = line.split("\t")
        if len(parts) < 3 or not parts[0]:
            if line.strip():
                raise InputError(path, f"line {i}", "expected 'name<TAB>description<TAB>gene...'")
            continue
        sets[parts[0]] = [g for g in parts[2:] if g]
    if not sets:
        raise InputError(path, None, "no gene sets in file")
    return sets


def _to_query(genes, species: str) -> list[str]:
    if species not in SPECIES:
        raise InputError(None, "species", f"must be 'human' or 'mouse', got {species!r}")
    # human symbols are upper case already; mouse symbols map case-insensitively
    return [str(g).upper() for g in genes]


def enrich_families(families, gmt, background, *, species: str = _P.species, cutoff: float = _P.cutoff) -> pd.DataFrame:
    """GO enrichment of every family with :func:`gseapy.enrich` (hypergeometric).

    Parameters
    ----------
    families
        Output of :func:`~stentrans.tl.pattern_families` (or ``{family: genes}``).
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
        ``genes`` (the family's genes in the term, sorted, ``;``-separated),
        ``significant``; sorted by family and adjusted p.
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
                # gseapy joins the genes in set order, which changes from run to run (string hashing): sorted here
                "genes": [";".join(sorted(str(g).split(";"))) for g in res["Genes"]],
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


def new_terms(enr_orig: pd.DataFrame, enr_enh: pd.DataFrame, *, pairs: pd.DataFrame | None = None) -> pd.DataFrame:
    """GO terms significant only after enhancement.

    * ``scope="overall"``: significant in some enhanced family and in no
      original family (one row per term, with its best enhanced family);
    * ``scope="paired"`` (when ``pairs`` from :func:`~stentrans.tl.pair_families` is
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


def family_counts(fam, enr):
    """Genes per family and significant terms per family (0 where none; all 0 without ``enr``)."""
    sizes = fam.groupby("family").size() if len(fam) else pd.Series(dtype=int)
    sig = enr[enr["significant"].astype(bool)].groupby("family").size() if enr is not None and len(enr) else pd.Series(dtype=int)
    return sizes, sig.reindex(sizes.index, fill_value=0)
