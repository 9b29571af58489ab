"""Seeded mutation test: every reader, on small cuts of real inputs, mutated.

Bases (made from ``../shared/data``): the melanoma ST table cut to 30 spots x
40 genes (``.tsv``, ``.tsv.gz``, transposed ``.csv``), the prostate Space
Ranger folder cut to 40 spots x 40 genes (10x ``.h5`` with
``tissue_positions.csv``; mtx folder with ``tissue_positions_list.csv``), a
counts + coordinates CSV pair, an ``.h5ad``, a Visium HD 16 um bin folder
(``.h5`` + ``tissue_positions.parquet``) and cell / molecule tables for
``bin``. Each case copies one base, mutates one of its files (a cell, the
header, a spot id, a row, bytes, the gzip stream, an HDF5 dataset, an
``.h5ad`` field, a parquet column, the scale factors) with its own seed and
runs the commands (``info`` and ``enhance``; ``qc`` for the pair, which
``enhance`` cannot take; ``bin`` then ``info``/``enhance`` for the finer
readers: molecules as ``.tsv.gz`` and Xenium ``.parquet``, a Stereo-seq GEM,
Slide-seq-style beads, cells as ``.csv`` and ``.h5ad``, each binned into disk
spots with ``--spacing`` and, where the reader allows it, into squares with
``--bin-size``) through :func:`stentrans.cli.main` in this process. Every
finer reader also gets ``far`` cases: one coordinate moved to 1e12 (or
another far value), which ``bin`` must refuse naming file, column and value. Every command must exit
0 or 2, never raise (no traceback), print its error as a line of its own,
leave nothing behind when it fails and write no non-finite value (nor an
empty gene name) when it succeeds. A few cases also run as real
subprocesses.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]
SEED = 19
N_CASES = 340

# ---------------------------------------------------------------------------
# the readers, their files and what can be done to each file
# ---------------------------------------------------------------------------
#: reader -> {file key: (path inside the base folder, file kind)}
FILES = {
    "st_tsv": {"table": ("mel.tsv", "text")},
    "st_gz": {"table": ("mel.tsv.gz", "gztext")},
    "st_csv_t": {"table": ("mel_t.csv", "text")},
    "sr_h5": {"matrix": ("outs/filtered_feature_bc_matrix.h5", "h5"), "positions": ("outs/spatial/tissue_positions.csv", "text"), "scalefactors": ("outs/spatial/scalefactors_json.json", "json")},
    "sr_mtx": {
        "matrix": ("outs/filtered_feature_bc_matrix/matrix.mtx.gz", "gztext"),
        "features": ("outs/filtered_feature_bc_matrix/features.tsv.gz", "gztext"),
        "barcodes": ("outs/filtered_feature_bc_matrix/barcodes.tsv.gz", "gztext"),
        "positions": ("outs/spatial/tissue_positions_list.csv", "text"),
    },
    "pair": {"counts": ("counts.csv", "text"), "coords": ("coords.csv", "text")},
    "h5ad": {"h5ad": ("prostate.h5ad", "h5ad")},
    "visium_hd": {"matrix": ("square_016um/filtered_feature_bc_matrix.h5", "h5"), "positions": ("square_016um/spatial/tissue_positions.parquet", "parquet"), "scalefactors": ("square_016um/spatial/scalefactors_json.json", "json")},
    "cells": {"table": ("cells.csv", "text")},
    "molecules": {"table": ("molecules.tsv.gz", "gztext")},
    "molecules_pq": {"table": ("transcripts.parquet", "pqmol")},
    "gem": {"table": ("chip.gem.gz", "gztext")},
    "beads": {"table": ("beads.tsv.gz", "gztext")},
    "cells_h5ad": {"h5ad": ("cells.h5ad", "h5adcells")},
}
#: the finer readers (``bin`` first) and the binning modes each allows
FINER = {"cells": ("spacing", "bin_size"), "molecules": ("spacing", "bin_size"), "molecules_pq": ("spacing",), "gem": ("spacing",), "beads": ("spacing",), "cells_h5ad": ("spacing", "bin_size")}
KINDS = {
    "text": ("cell", "cell", "header", "id", "row", "bytes"),
    "gztext": ("cell", "header", "id", "row", "gzip", "gzip"),
    "h5": ("h5value", "h5value", "h5name", "h5drop", "h5shape", "bytes"),
    "h5ad": ("adX", "adX", "adobs", "advar", "adobsm", "bytes"),
    "parquet": ("pqvalue", "pqvalue", "pqdrop", "pqdup", "bytes"),
    "json": ("json",),
    "pqmol": ("pqmvalue", "pqmvalue", "pqmdrop", "pqmgene", "bytes"),
    "h5adcells": ("adX", "adX", "adobs", "advar", "bytes"),
}
#: far-off coordinates (``far`` cases of the finer readers): beyond any lattice at the bases' spacing
FAR_VALUES = [1e12, -1e12, 1e15, 1e300, 5e7]
#: coordinate columns a ``far`` case may move (any case)
COORD_COLUMNS = {"x", "y", "global_x", "global_y", "x_location", "y_location", "x_global_px", "y_global_px"}
#: values a mutated cell takes: bad counts, odd numbers, text
CELL_VALUES = ["1e308", "inf", "-inf", "nan", "NA", "", "-1", "abc", "1e9", "1.5", "1e400", "-0", "0x1A", "3e38", "99999999999999999999", "1e12", " 4 ", "2.5e-3", "1000000000000", "5e-324"]
BAD_FLOATS = [1e308, np.inf, -np.inf, np.nan, -1.0, -5.0, 3e9, 1e12, 0.5, 2.0**60]


def _make_cases() -> list[tuple[str, str, str, int]]:
    rng = np.random.default_rng(SEED)
    readers = list(FILES)
    cases = []
    for k in range(N_CASES):
        reader = readers[k % len(readers)]
        key = list(FILES[reader])[int(rng.integers(len(FILES[reader])))]
        kinds = KINDS[FILES[reader][key][1]] + (("far", "far") if reader in FINER else ())
        kind = kinds[int(rng.integers(len(kinds)))]
        cases.append((reader, key, kind, int(rng.integers(2**31))))
    return cases


CASES = _make_cases()


# ---------------------------------------------------------------------------
# bases from the real data
# ---------------------------------------------------------------------------
def _write_10x_h5(path: Path, X, barcodes, gene_ids, genes) -> None:
    M = sp.csr_matrix(np.asarray(X))
    with h5py.File(path, "w") as f:
        f.attrs["filetype"] = "matrix"
        f.attrs["library_ids"] = np.array([b"cut"])
        g = f.create_group("matrix")
        g.create_dataset("barcodes", data=np.array([b.encode() for b in barcodes]))
        g.create_dataset("data", data=M.data.astype(np.int32))
        g.create_dataset("indices", data=M.indices.astype(np.int64))
        g.create_dataset("indptr", data=M.indptr.astype(np.int64))
        g.create_dataset("shape", data=np.array([M.shape[1], M.shape[0]], dtype=np.int32))
        fg = g.create_group("features")
        fg.create_dataset("_all_tag_keys", data=np.array([b"genome"]))
        fg.create_dataset("id", data=np.array([s.encode() for s in gene_ids]))
        fg.create_dataset("name", data=np.array([s.encode() for s in genes]))
        fg.create_dataset("feature_type", data=np.array([b"Gene Expression"] * len(genes)))
        fg.create_dataset("genome", data=np.array([b"GRCh38"] * len(genes)))


def _write_mtx(folder: Path, X, barcodes, gene_ids, genes) -> None:
    folder.mkdir(parents=True)
    buf = io.BytesIO()
    scipy.io.mmwrite(buf, sp.coo_matrix(np.asarray(X).T), field="integer")
    (folder / "matrix.mtx.gz").write_bytes(gzip.compress(buf.getvalue(), mtime=0))
    (folder / "features.tsv.gz").write_bytes(gzip.compress("".join(f"{i}\t{n}\tGene Expression\n" for i, n in zip(gene_ids, genes)).encode(), mtime=0))
    (folder / "barcodes.tsv.gz").write_bytes(gzip.compress("".join(f"{b}\n" for b in barcodes).encode(), mtime=0))


def _melanoma_cut(data: Path) -> pd.DataFrame:
    df = pd.read_csv(data / "melanoma_mel1_rep1.tsv.gz", sep="\t", index_col=0)
    xy = np.array([[float(v) for v in s.split("x")] for s in df.index])
    sel = (xy[:, 0] >= 9) & (xy[:, 0] < 16) & (xy[:, 1] >= 10) & (xy[:, 1] < 16)
    sub = df.loc[sel]
    genes = sub.columns[np.argsort(-(sub > 0).sum(0).to_numpy(), kind="stable")[:40]]
    return sub[genes]


def _prostate_cut(data: Path, n: int = 40):
    import stentrans

    a = stentrans.read(data / "visium_prostate_normal_crop")
    r, c = a.obs["array_row"].to_numpy(), a.obs["array_col"].to_numpy()
    mid = np.argmin((r - np.median(r)) ** 2 * 3 + ((c - np.median(c)) / 1) ** 2)
    d = (r - r[mid]) ** 2 * 3 + (c - c[mid]) ** 2
    keep = np.sort(np.argsort(d, kind="stable")[:n])
    sub = a[keep].copy()
    X = sub.X.toarray()
    genes = np.argsort(-(X > 0).sum(0), kind="stable")[:40]
    sub = sub[:, np.sort(genes)].copy()
    pos = pd.read_csv(data / "visium_prostate_normal_crop" / "spatial" / "tissue_positions.csv").set_index("barcode")
    others = pos.index.difference(sub.obs_names)[:10]
    p = pos.loc[list(sub.obs_names) + list(others)].copy()
    p.loc[others, "in_tissue"] = 0
    return sub, p.reset_index()


def _build_bases(data: Path, root: Path) -> dict[str, Path]:
    rng = np.random.default_rng(SEED)
    bases = {k: root / k for k in FILES}
    for b in bases.values():
        b.mkdir(parents=True)
    mel = _melanoma_cut(data)
    mel.to_csv(bases["st_tsv"] / "mel.tsv", sep="\t")
    (bases["st_gz"] / "mel.tsv.gz").write_bytes(gzip.compress(mel.to_csv(sep="\t").encode(), mtime=0))
    mel.T.to_csv(bases["st_csv_t"] / "mel_t.csv")
    # prostate Space Ranger folder: h5 + positions with header; mtx + positions list
    pro, pos = _prostate_cut(data)
    X = pro.X.toarray().astype(np.int64)
    ids = pro.var["gene_ids"].astype(str).tolist() if "gene_ids" in pro.var else list(pro.var_names)
    names = list(pro.var_names)
    outs = bases["sr_h5"] / "outs"
    (outs / "spatial").mkdir(parents=True)
    _write_10x_h5(outs / "filtered_feature_bc_matrix.h5", X, list(pro.obs_names), ids, names)
    pos.to_csv(outs / "spatial" / "tissue_positions.csv", index=False)
    (outs / "spatial" / "scalefactors_json.json").write_text(json.dumps({"spot_diameter_fullres": 60.0, "tissue_hires_scalef": 0.1, "tissue_lowres_scalef": 0.03, "fiducial_diameter_fullres": 90.0}))
    outs = bases["sr_mtx"] / "outs"
    (outs / "spatial").mkdir(parents=True)
    _write_mtx(outs / "filtered_feature_bc_matrix", X, list(pro.obs_names), ids, names)
    pos.to_csv(outs / "spatial" / "tissue_positions_list.csv", index=False, header=False)
    # counts + coordinates
    pd.DataFrame(X, index=pro.obs_names, columns=names).to_csv(bases["pair"] / "counts.csv")
    pd.DataFrame({"row": pro.obs["array_row"].to_numpy(), "col": pro.obs["array_col"].to_numpy()}, index=pro.obs_names).to_csv(bases["pair"] / "coords.csv")
    # h5ad with lattice coordinates and pixel positions
    h = ad.AnnData(X=sp.csr_matrix(X.astype(np.float32)), obs=pd.DataFrame({"in_tissue": 1, "array_row": pro.obs["array_row"].to_numpy(), "array_col": pro.obs["array_col"].to_numpy()}, index=pro.obs_names), var=pd.DataFrame(index=names))
    h.obsm["spatial"] = np.asarray(pro.obsm["spatial"], dtype=np.float64)
    h.write_h5ad(bases["h5ad"] / "prostate.h5ad")
    # Visium HD 16 um bins from the melanoma cut (square lattice)
    xy = np.array([[int(round(float(v))) for v in s.split("x")] for s in mel.index])
    rows, cols = xy[:, 1] - xy[:, 1].min(), xy[:, 0] - xy[:, 0].min()
    bcs = [f"s_016um_{r:05d}_{c:05d}-1" for r, c in zip(rows, cols)]
    hd = bases["visium_hd"] / "square_016um"
    (hd / "spatial").mkdir(parents=True)
    mpp = 0.2737
    side = 16 / mpp
    pd.DataFrame({"barcode": bcs, "in_tissue": np.ones(len(bcs), np.int32), "array_row": rows.astype(np.int32), "array_col": cols.astype(np.int32), "pxl_row_in_fullres": 900 + (rows + 0.5) * side, "pxl_col_in_fullres": 700 + (cols + 0.5) * side}).to_parquet(hd / "spatial" / "tissue_positions.parquet", index=False)
    (hd / "spatial" / "scalefactors_json.json").write_text(json.dumps({"spot_diameter_fullres": side, "bin_size_um": 16.0, "microns_per_pixel": mpp, "tissue_hires_scalef": 0.2, "tissue_lowres_scalef": 0.02}))
    _write_10x_h5(hd / "filtered_feature_bc_matrix.h5", mel.to_numpy(), bcs, [f"ENSG{i:05d}" for i in range(mel.shape[1])], list(mel.columns))
    # cells: 2-3 cells per melanoma spot at random places in its 100 um square, counts split
    cells, rows_x = [], []
    for (x, y), counts in zip(xy, mel.to_numpy()):
        k = int(rng.integers(2, 4))
        share = rng.multinomial(1, [1 / k] * k, size=int(counts.sum())).argmax(1) if counts.sum() else np.zeros(0, int)
        gene_of = np.repeat(np.arange(len(counts)), counts)
        for j in range(k):
            cells.append({"cell_id": f"c{len(cells)}", "x": 100.0 * x + rng.uniform(-45, 45), "y": 100.0 * y + rng.uniform(-45, 45), **dict(zip(mel.columns, np.bincount(gene_of[share == j], minlength=len(counts))))})
        # molecules of the first 6 genes
        for g in range(6):
            for _ in range(int(counts[g])):
                rows_x.append((100.0 * x + rng.uniform(-45, 45), 100.0 * y + rng.uniform(-45, 45), mel.columns[g]))
    cells = pd.DataFrame(cells)
    cells.to_csv(bases["cells"] / "cells.csv", index=False)
    mol = pd.DataFrame(rows_x, columns=["x", "y", "gene"])
    (bases["molecules"] / "molecules.tsv.gz").write_bytes(gzip.compress(mol.to_csv(sep="\t", index=False).encode(), mtime=0))
    # the same molecules as Xenium writes them (parquet, with a quality column)
    pd.DataFrame({"transcript_id": np.arange(len(mol)), "x_location": mol["x"], "y_location": mol["y"], "feature_name": mol["gene"], "qv": 30.0}).to_parquet(bases["molecules_pq"] / "transcripts.parquet", index=False)
    # a Stereo-seq GEM: the molecules on integer DNB coordinates, counted per (gene, DNB)
    dnb = mol.assign(x=np.rint(mol["x"]).astype(int), y=np.rint(mol["y"]).astype(int)).groupby(["gene", "x", "y"], sort=True).size().reset_index(name="MIDCount")
    gem = "#FileFormat=GEMv0.1\n#OffsetX=0\n#OffsetY=0\n" + dnb.rename(columns={"gene": "geneID"}).to_csv(sep="\t", index=False)
    (bases["gem"] / "chip.gem.gz").write_bytes(gzip.compress(gem.encode(), mtime=0))
    # beads: the cells as a Slide-seq table (bead id XxY, one column per gene)
    genes = list(mel.columns)
    beads = cells.set_index([[f"{x:.2f}x{y:.2f}" for x, y in zip(cells["x"], cells["y"])]])[genes]
    (bases["beads"] / "beads.tsv.gz").write_bytes(gzip.compress(beads.to_csv(sep="\t").encode(), mtime=0))
    # cells as an .h5ad (cells as observations, centroids in obs)
    h = ad.AnnData(X=sp.csr_matrix(cells[genes].to_numpy(np.float32)), obs=pd.DataFrame({"x": cells["x"].to_numpy(), "y": cells["y"].to_numpy()}, index=cells["cell_id"].to_numpy()), var=pd.DataFrame(index=genes))
    h.write_h5ad(bases["cells_h5ad"] / "cells.h5ad")
    return bases


# ---------------------------------------------------------------------------
# mutations
# ---------------------------------------------------------------------------
def _sep(lines: list[str]) -> str:
    first = next((ln for ln in lines[1:] if ln.strip()), lines[0] if lines else "")
    for s in ("\t", ",", " "):
        if s in first:
            return s
    return "\t"


def _mutate_lines(text: str, kind: str, rng) -> str:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines = lines[:-1]
    if not lines:
        return text
    sep = _sep(lines)
    data = list(range(1, len(lines))) or [0]
    if kind == "cell":
        i = int(rng.choice(data))
        f = lines[i].split(sep)
        j = int(rng.integers(1, len(f))) if len(f) > 1 else 0
        f[j] = str(rng.choice(CELL_VALUES))
        lines[i] = sep.join(f)
    elif kind == "header":
        f = lines[0].split(sep)
        j = int(rng.integers(len(f)))
        op = int(rng.integers(7))
        if op == 0:
            f[j] = ""
        elif op == 1:
            f[j] = f[(j + 1) % len(f)]
        elif op == 2 and len(f) > 1:
            del f[j]
        elif op == 3:
            f.insert(j, "EXTRA")
        elif op == 4:
            f[j] = "  "
        elif op == 5:
            f[j] = '"' + f[j]
        else:
            f[j] = "X" + f[j]
        lines[0] = sep.join(f)
    elif kind == "id":
        op = int(rng.integers(9))
        i = int(rng.choice(data))
        f = lines[i].split(sep)
        other = lines[int(rng.choice(data))].split(sep)[0]
        if op == 8:  # R's make.names prefix on every id (must be read)
            for k in data:
                g = lines[k].split(sep)
                g[0] = "X" + g[0]
                lines[k] = sep.join(g)
        else:
            f[0] = ["1000000000000x1", other, "", "abc", "-3x2", "1e308x1", "nanx1", f[0] + ".45"][op]
            lines[i] = sep.join(f)
    elif kind == "row":
        op = int(rng.integers(6))
        i = int(rng.choice(data))
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[i])
        elif op == 2:
            lines[i] = sep.join(lines[i].split(sep)[:-1])
        elif op == 3:
            lines[i] = lines[i] + sep + "7"
        elif op == 4:
            lines.insert(i, "")
        else:
            lines = lines[:1]
    return "\n".join(lines) + "\n"


def _mutate_bytes(raw: bytes, rng) -> bytes:
    op = int(rng.integers(4))
    n = len(raw)
    if op == 0:
        return raw[: int(rng.integers(0, max(n, 1)))]
    if op == 1 and n:
        b = bytearray(raw)
        k = int(rng.integers(n))
        b[k] ^= 0xFF
        return bytes(b)
    if op == 2:
        k = int(rng.integers(0, n + 1))
        return raw[:k] + b"\xff\xfe\x00" + raw[k:]
    return b""


def _mutate_h5(path: Path, kind: str, rng) -> None:
    with h5py.File(path, "r+") as f:
        m = f["matrix"]
        if kind == "h5value":
            data = m["data"][()].astype(np.float64)
            data[int(rng.integers(len(data)))] = BAD_FLOATS[int(rng.integers(len(BAD_FLOATS)))]
            del m["data"]
            m.create_dataset("data", data=data)
        elif kind == "h5name":
            names = m["features"]["name"][()]
            j = int(rng.integers(len(names)))
            names[j] = [b"", names[(j + 1) % len(names)], b"  "][int(rng.integers(3))]
            del m["features"]["name"]
            m["features"].create_dataset("name", data=names)
        elif kind == "h5drop":
            key = ["barcodes", "data", "indices", "indptr", "shape", "features/name", "features/id", "features"][int(rng.integers(8))]
            del m[key]
        elif kind == "h5shape":
            op = int(rng.integers(4))
            if op == 0:
                s = m["shape"][()]
                s[int(rng.integers(2))] += int(rng.choice([-3, 5]))
                m["shape"][...] = s
            elif op == 1:
                ip = m["indptr"][()]
                ip[-1] += 3
                m["indptr"][...] = ip
            elif op == 2:
                ix = m["indices"][()]
                ix[int(rng.integers(len(ix)))] = 10**6
                m["indices"][...] = ix
            else:
                bc = m["barcodes"][()]
                bc[1] = bc[0]
                m["barcodes"][...] = bc


def _mutate_h5ad(path: Path, kind: str, rng) -> None:
    if kind == "bytes":
        path.write_bytes(_mutate_bytes(path.read_bytes(), rng))
        return
    a = ad.read_h5ad(path)
    v = BAD_FLOATS[int(rng.integers(len(BAD_FLOATS)))]
    i = int(rng.integers(a.n_obs))
    if kind == "adX":
        X = a.X.toarray().astype(np.float64)
        X[i, int(rng.integers(a.n_vars))] = v
        a.X = sp.csr_matrix(X)
    elif kind == "adobs":
        col = (["array_row", "array_col"] if "array_row" in a.obs else ["x", "y"])[int(rng.integers(2))]
        vals = a.obs[col].to_numpy(dtype=np.float64).copy()
        vals[i] = [v, vals[(i + 1) % a.n_obs], vals[i] + 0.45][int(rng.integers(3))]
        a.obs[col] = vals
    elif kind == "advar":
        names = list(a.var_names)
        j = int(rng.integers(len(names)))
        names[j] = ["", names[(j + 1) % len(names)], " "][int(rng.integers(3))]
        a.var_names = names
    elif kind == "adobsm":
        s = np.asarray(a.obsm["spatial"], dtype=np.float64).copy()
        s[i, int(rng.integers(2))] = v
        a.obsm["spatial"] = s
    a.write_h5ad(path)


def _mutate_parquet(path: Path, kind: str, rng) -> None:
    if kind == "bytes":
        path.write_bytes(_mutate_bytes(path.read_bytes(), rng))
        return
    df = pd.read_parquet(path)
    i = int(rng.integers(len(df)))
    if kind == "pqvalue":
        col = ["in_tissue", "array_row", "array_col", "pxl_row_in_fullres", "pxl_col_in_fullres"][int(rng.integers(5))]
        df[col] = df[col].astype(np.float64)
        df.loc[i, col] = BAD_FLOATS[int(rng.integers(len(BAD_FLOATS)))]
    elif kind == "pqdrop":
        df = df.drop(columns=[df.columns[int(rng.integers(df.shape[1]))]])
    elif kind == "pqdup":
        df.loc[i, "barcode"] = df.loc[(i + 1) % len(df), "barcode"]
    df.to_parquet(path, index=False)


def _mutate_pqmol(path: Path, kind: str, rng) -> None:
    if kind == "bytes":
        path.write_bytes(_mutate_bytes(path.read_bytes(), rng))
        return
    df = pd.read_parquet(path)
    i = int(rng.integers(len(df)))
    if kind == "pqmvalue":
        col = ["x_location", "y_location", "qv"][int(rng.integers(3))]
        df.loc[i, col] = BAD_FLOATS[int(rng.integers(len(BAD_FLOATS)))]
    elif kind == "pqmdrop":
        df = df.drop(columns=[df.columns[int(rng.integers(df.shape[1]))]])
    elif kind == "pqmgene":
        df["feature_name"] = df["feature_name"].astype(object)
        df.loc[i, "feature_name"] = [None, "", "  "][int(rng.integers(3))]
    df.to_parquet(path, index=False)


def _far_text(text: str, rng, value=None, row=None, axis=None) -> tuple[str, str]:
    """One coordinate of a data row moved far off: a coordinate column where the header has one, else the bead id's x or y.

    ``value``, ``row`` (data row, from 0) and ``axis`` (0: x, 1: y) fix what is random otherwise.
    Returns the text and how the error names the point (``row <n>``, ``bead '<id>'``).
    """
    lines = text.rstrip("\n").split("\n")
    h = next(k for k, ln in enumerate(lines) if not ln.startswith("#"))
    sep = _sep(lines[h:])
    header = [c.strip().strip('"').lower() for c in lines[h].split(sep)]
    k = int(rng.integers(len(lines) - h - 1)) if row is None else row
    i = h + 1 + k
    f = lines[i].split(sep)
    v = f"{FAR_VALUES[int(rng.integers(len(FAR_VALUES)))] if value is None else value:g}"
    cols = [j for j, c in enumerate(header) if c in COORD_COLUMNS]
    a = int(rng.integers(2)) if axis is None else axis
    if cols:  # coordinate columns come as x, y pairs
        f[cols[a] if axis is not None else cols[int(rng.integers(len(cols)))]] = v
        where = f"row {k + 1}"
    else:  # a bead id XxY
        bx, by = f[0].split("x")
        f[0] = f"{v}x{by}" if a == 0 else f"{bx}x{v}"
        where = f"bead {f[0]!r}"
    lines[i] = sep.join(f)
    return "\n".join(lines) + "\n", where


def _mutate_far(f: Path, ftype: str, rng, value=None, row=None, axis=None) -> str:
    """Move one coordinate of ``f`` far off (``value``, ``row``, ``axis`` as in :func:`_far_text`); returns how the error names the point."""
    v = FAR_VALUES[int(rng.integers(len(FAR_VALUES)))] if value is None else value
    a = int(rng.integers(2)) if axis is None else axis
    if ftype == "text":
        text, where = _far_text(f.read_text(), rng, value, row, axis)
        f.write_text(text)
    elif ftype == "gztext":
        text, where = _far_text(gzip.decompress(f.read_bytes()).decode(), rng, value, row, axis)
        f.write_bytes(gzip.compress(text.encode(), mtime=0))
    elif ftype == "pqmol":
        df = pd.read_parquet(f)
        i = int(rng.integers(len(df))) if row is None else row
        df.loc[i, ["x_location", "y_location"][a]] = v
        df.to_parquet(f, index=False)
        where = f"row {i + 1}"
    elif ftype == "h5adcells":
        a_ = ad.read_h5ad(f)
        i = int(rng.integers(a_.n_obs)) if row is None else row
        col = ["x", "y"][a]
        vals = a_.obs[col].to_numpy(dtype=np.float64).copy()
        vals[i] = v
        a_.obs[col] = vals
        a_.write_h5ad(f)
        where = f"cell {a_.obs_names[i]!r}"
    else:
        raise ValueError(f"no far mutation for {ftype}")
    return where


def _mutate_json(path: Path, rng) -> None:
    d = json.loads(path.read_text())
    op = int(rng.integers(5))
    if op == 0:
        path.write_text("{not json")
    elif op == 1:
        d["spot_diameter_fullres"] = "abc"
    elif op == 2:
        d["bin_size_um"] = 8.0
    elif op == 3:
        d["microns_per_pixel"] = -1.0
    else:
        d["spot_diameter_fullres"] = 1e308
    if op:
        path.write_text(json.dumps(d))


def mutate(base: Path, case_dir: Path, reader: str, key: str, kind: str, seed: int) -> Path:
    """Copy ``base`` to ``case_dir`` and mutate its file ``key``; returns ``case_dir``."""
    shutil.copytree(base, case_dir)
    rel, ftype = FILES[reader][key]
    f = case_dir / rel
    rng = np.random.default_rng(seed)
    if kind == "far":
        _mutate_far(f, ftype, rng)
    elif ftype == "text":
        f.write_bytes(_mutate_bytes(f.read_bytes(), rng) if kind == "bytes" else _mutate_lines(f.read_text(), kind, rng).encode())
    elif ftype == "gztext":
        if kind == "gzip":
            raw = f.read_bytes()
            op = int(rng.integers(3))
            f.write_bytes(raw[: int(rng.integers(10, len(raw)))] if op == 0 else (_mutate_bytes(raw, rng) if op == 1 else raw + b"trailing garbage"))
        else:
            f.write_bytes(gzip.compress(_mutate_lines(gzip.decompress(f.read_bytes()).decode(), kind, rng).encode(), mtime=0))
    elif ftype == "h5":
        if kind == "bytes":
            f.write_bytes(_mutate_bytes(f.read_bytes(), rng))
        else:
            _mutate_h5(f, kind, rng)
    elif ftype in ("h5ad", "h5adcells"):
        _mutate_h5ad(f, kind, rng)
    elif ftype == "pqmol":
        _mutate_pqmol(f, kind, rng)
    elif ftype == "parquet":
        _mutate_parquet(f, kind, rng)
    elif ftype == "json":
        _mutate_json(f, rng)
    return case_dir


# ---------------------------------------------------------------------------
# running and checking
# ---------------------------------------------------------------------------
def _input(reader: str, d: Path) -> list[str]:
    return {
        "st_tsv": [str(d / "mel.tsv")],
        "st_gz": [str(d / "mel.tsv.gz")],
        "st_csv_t": [str(d / "mel_t.csv")],
        "sr_h5": [str(d / "outs")],
        "sr_mtx": [str(d / "outs")],
        "pair": [str(d / "counts.csv"), "--coords", str(d / "coords.csv")],
        "h5ad": [str(d / "prostate.h5ad")],
        "visium_hd": [str(d / "square_016um")],
        "cells": [str(d / "cells.csv")],
        "molecules": [str(d / "molecules.tsv.gz")],
        "molecules_pq": [str(d / "transcripts.parquet")],
        "gem": [str(d / "chip.gem.gz")],
        "beads": [str(d / "beads.tsv.gz")],
        "cells_h5ad": [str(d / "cells.h5ad")],
    }[reader]


#: ``bin`` per mode: square disk spots 100 units apart (disks of 90, so that 2-3 cells per 100 x 100 square fill most), or squares of side 100
BIN_MODES = {"spacing": ["--lattice", "square", "--spacing", "100", "--spot-diameter", "90"], "bin_size": ["--bin-size", "100"]}


def _mode(reader: str, seed: int) -> str | None:
    """The binning mode of a finer reader's case (alternating with the seed where the reader allows both)."""
    modes = FINER.get(reader)
    return modes[seed % len(modes)] if modes else None


def _commands(reader: str, d: Path, out: Path, mode: str | None = None) -> list[list[str]]:
    """The commands of a case; later ones read what earlier ones wrote (``bin``)."""
    if reader in FINER:
        binned = out / "binned.h5ad"
        mode = mode or FINER[reader][0]
        truth = ["--truth", str(out / "truth.h5ad")] if mode == "spacing" else []
        return [["bin", *_input(reader, d), *BIN_MODES[mode], *truth, "-o", str(binned)], ["info", str(binned)], ["enhance", str(binned), "-o", str(out / "enhanced.h5ad")]]
    if reader == "pair":
        return [["info", *_input(reader, d)], ["qc", *_input(reader, d), "-o", str(out / "qc.h5ad")]]
    return [["info", *_input(reader, d)], ["enhance", *_input(reader, d), "-o", str(out / "enhanced.h5ad")]]


def _output_of(argv: list[str]) -> Path | None:
    return Path(argv[argv.index("-o") + 1]) if "-o" in argv else None


def _outputs_of(argv: list[str]) -> list[Path]:
    """Every file a command writes (``-o``, and ``bin``'s ``--truth``)."""
    return [Path(argv[argv.index(flag) + 1]) for flag in ("-o", "--truth") if flag in argv]


def check_far(rc, err: str) -> list[str]:
    """Problems of ``bin`` on a far-off coordinate: it must exit 2 with one line naming the column and the value."""
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("INFO: ")]
    if rc != 2 or len(lines) != 1:
        return [f"far-off coordinate: exit {rc}, {len(lines)} stderr line(s) besides INFO: {err[-300:]!r}"]
    if not ("column '" in lines[0] and "far from the other points" in lines[0] and any(f"value {v:.15g} " in lines[0] for v in FAR_VALUES)):
        return [f"far-off coordinate: the error names no column and far value: {lines[0]!r}"]
    return []


def check_written(path: Path) -> list[str]:
    """Problems of a written ``.h5ad``: non-finite values, empty gene names."""
    a = ad.read_h5ad(path)
    probs = []
    X = a.X.data if sp.issparse(a.X) else np.asarray(a.X)
    if not np.isfinite(X).all():
        probs.append(f"{path.name}: {int((~np.isfinite(X)).sum())} non-finite values in X")
    for k, lay in a.layers.items():
        L = lay.data if sp.issparse(lay) else np.asarray(lay)
        if not np.isfinite(L).all():
            probs.append(f"{path.name}: non-finite values in layers[{k!r}]")
    for k, m in a.obsm.items():
        m = np.asarray(m)
        if m.dtype.kind in "fc" and not np.isfinite(m).all():
            probs.append(f"{path.name}: non-finite values in obsm[{k!r}]")
    for c in a.obs.columns:
        v = a.obs[c]
        if pd.api.types.is_float_dtype(v) and not np.isfinite(v.to_numpy()).all():
            probs.append(f"{path.name}: non-finite values in obs[{c!r}]")
    if (a.var_names.astype(str).str.strip() == "").any():
        probs.append(f"{path.name}: empty gene name")
    return probs


def _run_main(argv: list[str]) -> tuple[int | None, str, str, BaseException | None]:
    from stentrans import cli

    err, out = io.StringIO(), io.StringIO()
    exc = None
    rc = None
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = cli.main(argv)
        except SystemExit as e:  # argparse
            rc = e.code if isinstance(e.code, int) else 2
        except BaseException as e:  # noqa: BLE001 - a traceback is what this test looks for
            exc = e
    return rc, err.getvalue(), out.getvalue(), exc


def run_case(base: Path, work: Path, case, wrote: list | None = None) -> list[str]:
    """Problems found running one case (empty: it passed); the outputs written are appended to ``wrote``."""
    reader, key, kind, seed = case
    name = f"{reader}-{key}-{kind}-{seed}"
    d = mutate(base, work / "in" / name, reader, key, kind, seed)
    out = work / "out" / name
    out.mkdir(parents=True)
    probs = []
    for argv in _commands(reader, d, out, _mode(reader, seed)):
        if argv[0] in ("info", "enhance") and reader in FINER and not Path(argv[1]).exists():
            break  # bin failed (checked below): nothing to read
        rc, err, _, exc = _run_main(argv)
        tag = f"{name}: {' '.join(argv[:1])}"
        if kind == "far" and argv[0] == "bin":
            probs += [f"{tag}: {p}" for p in check_far(rc, err)]
        if exc is not None:
            probs.append(f"{tag}: raised {type(exc).__name__}: {exc}")
            break
        if rc not in (0, 2):
            probs.append(f"{tag}: exit {rc}: {err.strip()[-300:]}")
            break
        dest = _output_of(argv)
        if rc == 2:
            lines = [ln for ln in err.splitlines() if ln.strip()]
            if not lines or not lines[-1].startswith(f"stentrans {argv[0]}: error: "):
                probs.append(f"{tag}: exit 2 without an error line of its own: {err[-300:]!r}")
            elif str(d) not in lines[-1] and str(out) not in lines[-1]:
                probs.append(f"{tag}: the error names no file of the case: {lines[-1]!r}")
            if "Traceback" in err:
                probs.append(f"{tag}: traceback on stderr")
            for dest in _outputs_of(argv):
                if dest.exists() or list(dest.parent.glob(f".{dest.name}*")):
                    probs.append(f"{tag}: exit 2 but {dest.name} (or a temp file) was left")
            break
        if dest is not None:
            if not dest.exists():
                probs.append(f"{tag}: exit 0 but no {dest.name}")
                break
            probs += [f"{tag}: {p}" for p in check_written(dest)]
            if wrote is not None:
                wrote.append(dest)
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    if leftovers:
        probs.append(f"{name}: temp files left: {leftovers}")
    return probs


@pytest.fixture(scope="module")
def bases(shared_data, tmp_path_factory):
    return _build_bases(shared_data, tmp_path_factory.mktemp("mutation_bases"))


def test_case_list():
    assert len(CASES) >= 200
    assert {c[0] for c in CASES} == set(FILES)  # every reader
    kinds = {c[2] for c in CASES}
    assert {"cell", "header", "id", "row", "gzip", "h5value", "adX", "pqvalue", "pqmvalue", "far"} <= kinds
    # every finer reader has far-off cases, in every binning mode it allows
    far = {(c[0], _mode(c[0], c[3])) for c in CASES if c[2] == "far"}
    assert far == {(r, m) for r, modes in FINER.items() for m in modes}, far


def test_bases_pass(bases, tmp_path):
    """Unmutated, every base reads and enhances (so a mutation is what fails)."""
    probs = []
    spots = {}
    for reader, base in bases.items():
        for mode in FINER.get(reader, (None,)):
            out = tmp_path / f"{reader}-{mode}"
            out.mkdir()
            for argv in _commands(reader, base, out, mode):
                rc, err, _, exc = _run_main(argv)
                if exc is not None or rc != 0:
                    probs.append(f"{reader} {mode}: {argv[0]}: rc {rc} {exc!r} {err[-400:]}")
                    break
                for dest in _outputs_of(argv):
                    probs += check_written(dest)
            if mode is not None and (out / "binned.h5ad").exists():
                spots[reader, mode] = ad.read_h5ad(out / "binned.h5ad").n_obs
    assert not probs, "\n".join(probs)
    # every finer base bins into enough spots to enhance (the same points, so similar numbers)
    assert min(spots.values()) >= 20, spots


@pytest.mark.slow
def test_mutations_in_process(bases, tmp_path):
    """All cases through ``stentrans.cli.main`` in this process; every problem is listed at the end."""
    # the package's INFO lines are not what this test reads
    logging.getLogger("stentrans").setLevel(logging.WARNING)
    probs, wrote = [], []
    try:
        for case in CASES:
            probs += run_case(bases[case[0]], tmp_path, case, wrote)
    finally:
        logging.getLogger("stentrans").setLevel(logging.NOTSET)
    assert not probs, f"{len(probs)} problem(s) in {len(CASES)} cases:\n" + "\n".join(probs)
    # the accepted mutations went all the way: enhanced (or QC-ed, binned) files were written and checked
    assert sum(p.name == "enhanced.h5ad" for p in wrote) >= 30, len(wrote)


# a few cases as real subprocesses: the installed entry point, its exit codes and stderr
SUBPROCESS_CASES = CASES[:: len(CASES) // 4][:4]


@pytest.mark.slow
def test_mutations_subprocess(bases, tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("STENTRANS_THREADS", "1")

    def one(case):
        reader, key, kind, seed = case
        name = f"{reader}-{key}-{kind}-{seed}"
        d = mutate(bases[reader], tmp_path / "in" / name, reader, key, kind, seed)
        out = tmp_path / "out" / name
        out.mkdir(parents=True)
        probs = []
        for argv in _commands(reader, d, out, _mode(reader, seed)):
            if argv[0] in ("info", "enhance") and reader in FINER and not Path(argv[1]).exists():
                break
            p = subprocess.run([sys.executable, "-m", "stentrans.cli", *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
            tag = f"{name}: {argv[0]}"
            if p.returncode not in (0, 2) or "Traceback" in p.stderr:
                probs.append(f"{tag}: exit {p.returncode}: {p.stderr[-400:]}")
                break
            dest = _output_of(argv)
            if p.returncode == 2:
                last = [ln for ln in p.stderr.splitlines() if ln.strip()][-1]
                if not last.startswith(f"stentrans {argv[0]}: error: "):
                    probs.append(f"{tag}: last stderr line is not the error: {last!r}")
                probs += [f"{tag}: exit 2 but {q.name} was left" for q in _outputs_of(argv) if q.exists()]
                break
            if dest is not None:
                probs += [f"{tag}: {q}" for q in check_written(dest)]
        return probs

    with ThreadPoolExecutor(max_workers=2) as pool:
        probs = [q for found in pool.map(one, SUBPROCESS_CASES) for q in found]
    assert not probs, "\n".join(probs)


#: the column a far-off x is named by, per finer reader
FAR_COLUMN = {"cells": "x", "molecules": "x", "molecules_pq": "x_location", "gem": "x", "beads": "bead id X", "cells_h5ad": "x"}


@pytest.mark.parametrize("reader,mode", [(r, m) for r, modes in FINER.items() for m in modes])
def test_far_off_point_subprocess(bases, tmp_path, reader, mode):
    """One point at x = 1e12 (issue 30, item 9): ``stentrans bin`` exits 2 with one stderr line naming file, column, value and point; nothing is written.

    Before, a molecule table with such a row asked for a tissue-mask histogram of terabytes (a traceback).
    """
    d = tmp_path / "in"
    shutil.copytree(bases[reader], d)
    ((rel, ftype),) = FILES[reader].values()
    where = _mutate_far(d / rel, ftype, np.random.default_rng(0), value=1e12, row=3, axis=0)
    out = tmp_path / "out"
    out.mkdir()
    argv = _commands(reader, d, out, mode)[0]
    assert argv[0] == "bin" and ("--truth" in argv) == (mode == "spacing")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "stentrans.cli", *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    # one error line, the last; before it at most the reader's INFO log (cell tables: which columns are cell ids)
    assert p.returncode == 2 and lines and all(ln.startswith("INFO: ") for ln in lines[:-1]), (p.returncode, p.stderr)
    lines = lines[-1:]
    grid = "squares of side 100" if mode == "bin_size" else "square lattice steps at spacing 100"
    assert lines[0].startswith(f"stentrans bin: error: {d / rel}: column {FAR_COLUMN[reader]!r}: value 1000000000000 at {where} lies far from the other points"), lines[0]
    assert grid in lines[0] and "more than the limit of 32768 per side" in lines[0], lines[0]
    assert not list(out.iterdir())
