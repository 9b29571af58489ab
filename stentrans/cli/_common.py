"""What several commands share: the input argument and the read-then-QC start."""

from __future__ import annotations

import dataclasses

from ._args import add_config_args


def add_input_args(p, *, qc: bool = True, qc_defaults: dict | None = None) -> None:
    """``INPUT``, ``--coords``, ``--counts``, ``--lattice`` and ``--bin-size``; with ``qc`` also the QC filters (``qc_defaults``: a command's own) and ``--no-filter``."""
    p.add_argument("input", help="h5ad, Space Ranger outs folder (Visium HD: outs, binned_outputs/ or a square_XXXum/ folder), SpatialData .zarr, ST table, counts + coords CSV ...")
    g = p.add_argument_group("input and QC" if qc else "input")
    g.add_argument("--coords", default=None, metavar="FILE", help="coordinates table (spot id, row, col; or a Space Ranger positions file) for an INPUT that holds counts only")
    g.add_argument("--counts", default=None, metavar="FILE", help="count matrix (10x .h5, mtx folder, .h5ad or table) for an INPUT that holds positions only")
    g.add_argument("--lattice", default="auto", choices=["auto", "square", "hex"], help="lattice of the input (default: detected)")
    # a string: the reader checks it and names the folder and the bin sizes it holds
    g.add_argument(
        "--bin-size",
        default=None,
        metavar="UM",
        help="Visium HD: bin side in micrometres, e.g. 16 reads binned_outputs/square_016um/ of an outs or binned_outputs folder (default: 8 when present, else the only one)",
    )
    if qc:
        from ..pp import QCConfig

        add_config_args(g, QCConfig, skip=("normalize", "target_sum", "log1p"), overrides=qc_defaults)
        g.add_argument("--no-filter", action="store_true", help="turn off the QC filters: use the input's genes and spots as they are (already QC-ed)")


def add_threads_arg(p) -> None:
    """``--threads``: torch's and the BLAS library's threads (:func:`stentrans._utils.configure_threads`)."""
    from .._utils import available_cores

    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help=f"threads for torch and BLAS together (default: the cores this process may use, {available_cores()} here; STENTRANS_THREADS overrides the default)",
    )


def load_input(args):
    """Read ``args.input``; unless ``--no-filter``, apply the QC filters given."""
    from .. import pp
    from ..io import read

    adata = read(args.input, lattice=args.lattice, counts=args.counts, coords=args.coords, bin_size=getattr(args, "bin_size", None))
    if hasattr(args, "no_filter") and not args.no_filter:
        from ..pp import QCConfig

        kw = {f.name: getattr(args, f.name) for f in dataclasses.fields(QCConfig) if hasattr(args, f.name)}
        adata = pp.qc(adata, **kw)
    return adata
