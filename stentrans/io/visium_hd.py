"""Visium HD: Space Ranger's binned outputs as square lattices.

Space Ranger writes, for a Visium HD run, ``outs/binned_outputs/`` with one
folder per bin size, ``square_002um/``, ``square_008um/``,
``square_016um/`` (and custom sizes). Each holds

* ``filtered_feature_bc_matrix.h5`` (or the ``filtered_feature_bc_matrix/``
  mtx folder): bins x genes, barcodes such as ``s_016um_00012_00034-1``
  (bin size, ``array_row``, ``array_col``);
* ``spatial/tissue_positions.parquet``: ``barcode``, ``in_tissue``,
  ``array_row``, ``array_col``, ``pxl_row_in_fullres``,
  ``pxl_col_in_fullres`` (read by :func:`stentrans.io.read_positions`);
* ``spatial/scalefactors_json.json`` with ``bin_size_um``,
  ``microns_per_pixel``, ``spot_diameter_fullres`` (the bin side in
  full-resolution pixels), ``tissue_hires_scalef``, ``tissue_lowres_scalef``;
  and the tissue images.

The bins tile the capture area without gaps, so the lattice is always
``square`` (``array_row``, ``array_col`` in bins; enhancement puts new bins
at half steps: a 16 um binning becomes 8 um positions). ``obsm["spatial"]``
holds the full-resolution pixel positions; ``uns["stentrans"]`` records
``bin_size_um``, ``microns_per_pixel`` and the bin folder.

:func:`_find_bin_folder` maps what the user gave (the ``outs`` folder, its
parent, ``binned_outputs/``, one ``square_XXXum/`` folder) and the chosen
bin size to one bin folder; :func:`_bin_info` says whether a Space Ranger
folder is a Visium HD bin folder.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from .._errors import InputError
from .spaceranger import _scalefactors

log = logging.getLogger("stentrans")

__all__: list[str] = []

_BIN_DIR = re.compile(r"^square_(\d+)um$")
#: the bin size read when a ``binned_outputs/`` folder holds several and none is chosen
#: (Space Ranger's and spatialdata-io's default analysis bin)
DEFAULT_BIN_UM = 8


def _bin_dirs(binned: Path) -> dict[int, Path]:
    """``{bin size in um: folder}`` of a ``binned_outputs/`` folder."""
    out = {}
    for d in sorted(binned.iterdir()):
        m = _BIN_DIR.match(d.name)
        if m and d.is_dir():
            out[int(m.group(1))] = d
    return out


def _bin_size_value(bin_size, source) -> int | None:
    if bin_size is None:
        return None
    try:
        v = float(bin_size)
    except (TypeError, ValueError):
        raise InputError(source, "bin_size", f"{bin_size!r} is not a number of micrometres") from None
    if not (v > 0 and v == int(v)):
        raise InputError(source, "bin_size", f"{bin_size!r}: Visium HD bin sizes are whole micrometres (2, 8, 16 ...)")
    return int(v)


def _find_bin_folder(path: Path, bin_size=None) -> Path | None:
    """The ``square_XXXum`` folder ``path`` means, or ``None`` when ``path`` is no Visium HD layout.

    ``path`` may be a bin folder itself, ``binned_outputs/``, the ``outs``
    folder holding it, or the folder holding ``outs``. With several bin
    sizes, ``bin_size`` (micrometres) chooses; without it the 8 um bins are
    read when present.
    """
    want = _bin_size_value(bin_size, path)
    m = _BIN_DIR.match(path.name)
    if m and path.is_dir():
        if want is not None and int(m.group(1)) != want:
            raise InputError(path, "bin_size", f"{want} um asked for, but this folder holds the {int(m.group(1))} um bins")
        return path
    for binned in (path, path / "binned_outputs", path / "outs" / "binned_outputs"):
        if binned.name != "binned_outputs" or not binned.is_dir():
            continue
        bins = _bin_dirs(binned)
        if not bins:
            raise InputError(binned, "binned_outputs", "no square_XXXum bin folder inside")
        have = ", ".join(f"{b} um" for b in bins)
        if want is None:
            if len(bins) == 1:
                want = next(iter(bins))
            elif DEFAULT_BIN_UM in bins:
                want = DEFAULT_BIN_UM
                log.info("%s: reading the %d um bins (have %s; choose with bin_size)", binned, want, have)
            else:
                raise InputError(binned, "bin_size", f"several bin sizes ({have}): choose one with bin_size")
        if want not in bins:
            raise InputError(binned, "bin_size", f"no square_{want:03d}um folder (bin sizes present: {have})")
        return bins[want]
    return None


def _bin_info(folder: Path) -> dict | None:
    """``bin_size_um``, ``microns_per_pixel`` and ``bin_folder`` of a Visium HD bin folder, else ``None``.

    A folder is a Visium HD bin folder when its name is ``square_XXXum``, or
    when it has ``spatial/tissue_positions.parquet`` and its
    ``spatial/scalefactors_json.json`` has ``bin_size_um``. The bin size
    comes from the scale factors, else from the folder name; the two must
    agree.
    """
    m = _BIN_DIR.match(folder.name)
    if m is None and not (folder / "spatial" / "tissue_positions.parquet").exists():
        return None
    sf = _scalefactors(folder / "spatial") or {}
    if m is None and "bin_size_um" not in sf:
        return None
    size = sf.get("bin_size_um")
    if m is not None and size is not None and float(size) != float(m.group(1)):
        raise InputError(folder / "spatial" / "scalefactors_json.json", "bin_size_um", f"{size:g} contradicts the folder name {folder.name}")
    if size is None:
        size = float(m.group(1))
    if not size > 0:
        raise InputError(folder / "spatial" / "scalefactors_json.json", "bin_size_um", f"{size!r} must be positive")
    info = {"bin_size_um": float(size), "bin_folder": folder.name}
    mpp = sf.get("microns_per_pixel")
    if mpp is not None:
        if not mpp > 0:
            raise InputError(folder / "spatial" / "scalefactors_json.json", "microns_per_pixel", f"{mpp!r} must be positive")
        info["microns_per_pixel"] = float(mpp)
    return info


def _library_id(folder: Path) -> str:
    """``<sample>_square_XXXum``: the sample folder (above ``outs``) or the folder above ``binned_outputs``."""
    up = folder.parent
    if up.name == "binned_outputs":
        up = up.parent
        if up.name == "outs":
            up = up.parent
        return f"{up.name}_{folder.name}" if up.name else folder.name
    return folder.name
