"""Rule bin_cells: cell-level / subcellular data -> square pseudo-spots (.h5ad)."""

from _common import fail, start

log = start(snakemake)  # noqa: F821

from stentrans._errors import InputError  # noqa: E402
from stentrans._utils import atomic_path  # noqa: E402
from stentrans.binning import bin_cells, read_cells  # noqa: E402
from stentrans.download import data_path  # noqa: E402

b = snakemake.params.binning  # noqa: F821
src = data_path(snakemake.input.data)  # noqa: F821
try:
    coords, counts, genes = read_cells(src, x=b.get("x", "x"), y=b.get("y", "y"), gene=b.get("gene_column", "gene"), drop=b.get("drop", []), query=b.get("query") or None)
    binned = bin_cells(coords, counts, b["bin_size"], x=b.get("x", "x"), y=b.get("y", "y"), gene=b.get("gene_column", "gene"), genes=genes, min_cells=b.get("min_cells", 1), source=src)
except InputError as err:
    fail(f"bin_cells: error: {err}")
with atomic_path(snakemake.output[0], suffix=".h5ad") as tmp:  # noqa: F821
    binned.write_h5ad(tmp)
log.info("%d pseudo-spots x %d genes -> %s", binned.n_obs, binned.n_vars, snakemake.output[0])  # noqa: F821
