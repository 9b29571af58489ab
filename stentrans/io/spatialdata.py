"""SpatialData in and out: a slide's SpatialData zarr read as our AnnData, the enhanced result written as SpatialData.

In (:func:`read_table`, used by :func:`stentrans.read` for a ``.zarr``
folder): the layout spatialdata-io writes for Visium (and Visium HD) -- a
table whose ``uns["spatialdata_attrs"]`` (``region``, ``region_key``,
``instance_key``) annotates a shapes element (circles of the spot radius, or
bin polygons), images beside them. The table's rows for that region become
the spots: counts from ``X`` (or ``layers["counts"]``), ``array_row`` /
``array_col`` from its ``obs`` (spatialdata-io keeps them), ``obsm["spatial"]``
the shapes' centres in the shapes element's own (intrinsic) coordinates, and
the circles' diameter as ``uns["spatial"][region]["scalefactors"]
["spot_diameter_fullres"]``; everything else is the ``.h5ad`` reader's
(:mod:`stentrans.io.h5ad`).

Out (:func:`to_spatialdata`, :func:`write_spatialdata`; ``stentrans enhance
IN -o OUT.zarr``): table :data:`TABLE_KEY` annotating shapes
:data:`SHAPES_KEY` -- circles of the halved spot diameter on hex lattices,
square tiles of the enhanced pitch on square ones (ST, Visium HD) -- in the
input's coordinate systems: a SpatialData input's shapes transformations
and its images are carried over; otherwise one coordinate system
``"global"`` in the units of ``obsm["spatial"]``
(``uns["stentrans"]["spatial_units"]``). The zarr store is written to a
temporary folder beside the output and renamed into place.

spatialdata is an optional dependency (``pip install "stentrans[spatialdata]"``);
it is imported only here, and only when a ``.zarr`` is read or written.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import InputError
from ..lattice import SPACING_UM, SPOT_DIAMETER_UM, UNIT_XY, physical

__all__ = ["TABLE_KEY", "SHAPES_KEY", "REGION_KEY", "INSTANCE_KEY", "is_spatialdata_path", "read_spatialdata", "read_table", "to_spatialdata", "write_spatialdata"]

#: names of the written table and shapes element, and the table's annotation columns (spatialdata-io's)
TABLE_KEY = "table"
SHAPES_KEY = "enhanced_spots"
REGION_KEY = "region"
INSTANCE_KEY = "spot_id"
#: coordinate system of outputs whose input was not SpatialData
GLOBAL = "global"


def _sd():
    try:
        import spatialdata
    except ImportError as err:
        raise ImportError(f"reading or writing SpatialData (.zarr) needs spatialdata: pip install 'stentrans[spatialdata]' ({err})") from None
    return spatialdata


def is_spatialdata_path(path) -> bool:
    """Whether ``path`` names a SpatialData zarr store (a folder, or a new output, ending in ``.zarr``)."""
    return Path(path).name.lower().endswith(".zarr")


# ---------------------------------------------------------------- in


def _open(path: Path):
    sd = _sd()
    if not ((path / "zarr.json").is_file() or (path / ".zgroup").is_file()):
        raise InputError(path, "format", "a .zarr folder without zarr.json or .zgroup: not a zarr store")
    try:
        return sd.read_zarr(path)
    except Exception as err:  # zarr, ome-zarr, anndata and geopandas errors alike
        raise InputError(path, "file", f"cannot be read as SpatialData ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None


def _regions(table) -> list[str]:
    attrs = table.uns.get("spatialdata_attrs") or {}
    region = attrs.get("region")
    if region is None:
        return []
    return [region] if isinstance(region, str) else [str(r) for r in region]


def _choose(sdata, path: Path, library_id, bin_size) -> tuple[str, str]:
    """The (table, shapes region) to read: the one table-shapes pair, or the one ``library_id`` / ``bin_size`` names."""
    pairs = [(t, r) for t, table in sdata.tables.items() for r in _regions(table) if r in sdata.shapes]
    if not pairs:
        have = ", ".join(f"{t} -> {_regions(tab) or 'nothing'}" for t, tab in sdata.tables.items()) or "no table"
        raise InputError(path, "tables", f"no table annotating a shapes element (uns['spatialdata_attrs'] region; have {have}; shapes: {', '.join(sdata.shapes) or 'none'})")
    if bin_size is not None:
        try:
            name = f"square_{int(round(float(bin_size))):03d}um"
        except (TypeError, ValueError):
            raise InputError(path, "bin_size", f"{bin_size!r} is not a number of micrometres") from None
        pairs = [(t, r) for t, r in pairs if name in (t, r) or r.endswith("_" + name)]
        if not pairs:
            raise InputError(path, "bin_size", f"no table or shapes element named {name} (Visium HD bins as spatialdata-io names them)")
    if library_id is not None:
        pairs = [(t, r) for t, r in pairs if library_id in (t, r)]
        if not pairs:
            raise InputError(path, "library_id", f"{library_id!r} is neither a table nor a shapes element a table annotates")
    if len(pairs) > 1:
        raise InputError(path, "tables", f"several tables annotate shapes ({', '.join(f'{t} -> {r}' for t, r in pairs)}): pass library_id= the region (shapes element) to read")
    return pairs[0]


def _centres(shapes, path: Path, region: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Intrinsic ``(n, 2)`` centres of the shapes (circles: their points; polygons: centroids) and the circles' radii."""
    geom = shapes.geometry
    kinds = set(geom.geom_type)
    if kinds <= {"Point"}:
        xy = np.column_stack([geom.x.to_numpy(float), geom.y.to_numpy(float)])
        radius = shapes["radius"].to_numpy(float) if "radius" in shapes.columns else None
        return xy, radius
    if kinds <= {"Polygon", "MultiPolygon"}:
        c = geom.centroid
        return np.column_stack([c.x.to_numpy(float), c.y.to_numpy(float)]), None
    raise InputError(path, f"shapes[{region!r}]", f"geometries {sorted(kinds)}: expected circles (points with a radius) or polygons")


def _tree_sha256(folder: Path) -> str:
    """sha256 over every file of ``folder`` (relative names and contents, in sorted order)."""
    h = hashlib.sha256()
    for p in sorted(q for q in folder.rglob("*") if q.is_file()):
        h.update(p.relative_to(folder).as_posix().encode() + b"\0")
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def read_spatialdata(path, *, lattice: str, snap_tol: float, layer: str | None = None, library_id: str | None = None, bin_size: float | None = None):
    """The table of a SpatialData store (:func:`read_table`), read as an ``.h5ad`` would be."""
    from .h5ad import _read_h5ad

    table, main_file, extra = read_table(path, library_id=library_id, bin_size=bin_size)
    return _read_h5ad(Path(path), lattice, snap_tol, layer, adata=table, fmt="spatialdata", main_file=main_file, extra=extra)


def read_table(path, library_id: str | None = None, bin_size: float | None = None):
    """A SpatialData zarr's spot table in the ``.h5ad`` reader's layout.

    Parameters
    ----------
    path
        ``.zarr`` folder (e.g. written by spatialdata-io's ``visium`` reader
        and ``sdata.write``).
    library_id
        The table or region (shapes element) to read when several tables
        annotate shapes.
    bin_size
        Visium HD: read the ``square_XXXum`` table of this bin side (um).

    Returns
    -------
    ``(adata, main_file, extra)``: the table's rows of the region with
    ``obsm["spatial"]`` the shapes' centres (intrinsic coordinates) and
    ``uns["spatial"]`` holding the circles' diameter; the table's metadata
    file (named in errors); and ``uns["stentrans"]`` entries (``spatialdata``:
    table, region, coordinate systems; ``input_sha256`` over the table's
    files; ``spatial_units``).
    """
    path = Path(path)
    sdata = _open(path)
    tname, region = _choose(sdata, path, library_id, bin_size)
    table = sdata.tables[tname]
    attrs = table.uns["spatialdata_attrs"]
    region_key, instance_key = attrs.get("region_key"), attrs.get("instance_key")
    field = f"tables[{tname!r}].obs"
    for key in (region_key, instance_key):
        if key not in table.obs:
            raise InputError(path, field, f"column {key!r} (uns['spatialdata_attrs']) not found")
    rows = (table.obs[region_key].astype(str) == region).to_numpy()
    if not rows.any():
        raise InputError(path, f"{field}[{region_key!r}]", f"no row annotates {region!r}")
    adata = table[rows].copy()
    shapes = sdata.shapes[region]
    xy, radius = _centres(shapes, path, region)
    where = pd.Index(shapes.index).get_indexer(adata.obs[instance_key])
    if (where < 0).any():
        missing = adata.obs[instance_key].to_numpy()[where < 0][:5]
        raise InputError(path, f"{field}[{instance_key!r}]", f"instance id(s) {', '.join(map(str, missing))} not in shapes[{region!r}]")
    adata.obsm["spatial"] = xy[where]
    adata.obs = adata.obs.drop(columns=[region_key, instance_key])
    adata.uns = {k: v for k, v in adata.uns.items() if k not in ("spatialdata_attrs", "spatial", "stentrans")}
    # scanpy's layout, keyed by the region (the writer finds the input's spots by it): circles give
    # their diameter, bins (polygons) their side, in the shapes' intrinsic units
    if radius is not None:
        size, how = 2.0 * float(np.median(radius[where])), "circle diameter"
    else:
        size, how = float(np.sqrt(np.median(shapes.geometry.area.to_numpy(float)[where]))), "square root of the polygon area"
    scalefactors = {"spot_diameter_fullres": size} if math.isfinite(size) and size > 0 else {}
    adata.uns["spatial"] = {region: {"images": {}, "scalefactors": scalefactors, "metadata": {"source": f"SpatialData shapes {region!r} ({how})"}}}
    sd = _sd()
    systems = sorted(sd.transformations.get_transformation(shapes, get_all=True))
    table_dir = path / "tables" / tname
    main_file = next((table_dir / n for n in ("zarr.json", ".zattrs", ".zgroup") if (table_dir / n).is_file()), path)
    extra = {
        "spatialdata": {"table": tname, "region": region, "coordinate_systems": systems},
        "input_sha256": _tree_sha256(table_dir) if table_dir.is_dir() else "",
        "spatial_units": f"intrinsic coordinates of shapes {region!r} (coordinate systems {', '.join(systems)})",
    }
    return adata, main_file, extra


# ---------------------------------------------------------------- out


def _source_sdata(adata, source):
    """The SpatialData the enhanced data came from and its spots' region, or ``(None, None)``.

    ``source``: a SpatialData object or ``.zarr`` path; default the input
    recorded in ``uns["stentrans"]["source"]`` when its format is
    ``spatialdata``. The region is the ``uns["spatial"]`` key the reader set
    (the enhancement keeps it), else the one table-shapes pair.
    """
    st = adata.uns.get("stentrans", {})
    if source is None:
        if st.get("format") != "spatialdata":
            return None, None
        source = st.get("source")
    if isinstance(source, (str, os.PathLike)):
        if not (is_spatialdata_path(source) and Path(source).is_dir()):
            return None, None
        sdata = _open(Path(source))
    elif source is not None and isinstance(source, _sd().SpatialData):
        sdata = source
    else:
        return None, None
    region = next((k for k in adata.uns.get("spatial", {}) if k in sdata.shapes), None)
    if region is None:
        region = _choose(sdata, Path(str(sdata.path or "SpatialData")), None, None)[1]
    return sdata, region


def _affine(rows, cols, xy) -> np.ndarray:
    """Least-squares ``(array_row, array_col, 1) -> (x, y)``; (3, 2)."""
    A = np.column_stack([rows, cols, np.ones(len(rows))])
    coef, *_ = np.linalg.lstsq(A, xy, rcond=None)
    return coef


def _spot_geometry(adata):
    """Shapes of the enhanced spots (GeoDataFrame with ``geometry`` and, for circles, ``radius``)."""
    import geopandas as gpd
    import shapely

    lattice = adata.uns.get("stentrans", {}).get("lattice", "square")
    rows = adata.obs["array_row"].to_numpy(float)
    cols = adata.obs["array_col"].to_numpy(float)
    if "spatial" in adata.obsm:
        xy = np.asarray(adata.obsm["spatial"], dtype=float)[:, :2]
    else:
        xy = np.column_stack(physical(rows, cols, lattice, spacing=SPACING_UM[lattice]))
    coef = _affine(rows, cols, xy)
    # measured pitch in these coordinates: one array_col step is UNIT_XY[..][0] pitches
    pitch = float(np.hypot(*coef[1])) / UNIT_XY[lattice][0]
    index = pd.RangeIndex(adata.n_obs)
    if lattice == "hex":
        diam = None
        for lib in (adata.uns.get("spatial") or {}).values():
            sf = lib.get("scalefactors", {}) if isinstance(lib, dict) else {}
            if "spot_diameter_fullres" in sf:
                diam = float(sf["spot_diameter_fullres"])  # already halved by the enhancement
                break
        if diam is None or not (diam > 0 and math.isfinite(diam)):
            diam = SPOT_DIAMETER_UM["hex"] / SPACING_UM["hex"] * pitch / 2.0
        return gpd.GeoDataFrame({"radius": np.full(adata.n_obs, diam / 2.0)}, geometry=shapely.points(xy), index=index)
    # square tiles of the enhanced pitch: corners half a half-step from the centre, through the affine map
    h = 0.25
    corners = np.array([[-h, -h], [-h, h], [h, h], [h, -h]])
    rc = np.stack([rows, cols], axis=1)[:, None, :] + corners[None]
    verts = np.concatenate([rc, np.ones(rc.shape[:2] + (1,))], axis=2) @ coef
    verts = verts - verts.mean(axis=1, keepdims=True) + xy[:, None, :]
    return gpd.GeoDataFrame(geometry=shapely.polygons(verts), index=index)


def to_spatialdata(adata, source=None):
    """The enhanced AnnData as a SpatialData object.

    Table :data:`TABLE_KEY` (the AnnData, with ``obs[REGION_KEY]`` and
    ``obs[INSTANCE_KEY]``) annotating shapes :data:`SHAPES_KEY`: circles of
    the halved spot diameter on hex, square tiles of the enhanced pitch on
    square lattices, at ``obsm["spatial"]``. With a SpatialData ``source``
    (default: the input recorded in ``uns["stentrans"]`` when it was one), the
    shapes get the transformations of the input's spots and the input's
    images come along (lazily, written from the source).
    """
    sd = _sd()
    from spatialdata.models import ShapesModel, TableModel
    from spatialdata.transformations import Identity, get_transformation

    src, region = _source_sdata(adata, source)
    if src is not None:
        transformations = get_transformation(src.shapes[region], get_all=True)
        images = dict(src.images)
    else:
        transformations, images = {GLOBAL: Identity()}, {}
    shapes = ShapesModel.parse(_spot_geometry(adata), transformations=transformations)
    table = adata.copy()
    table.obs[REGION_KEY] = pd.Categorical([SHAPES_KEY] * table.n_obs)
    table.obs[INSTANCE_KEY] = np.arange(table.n_obs)
    table = TableModel.parse(table, region=SHAPES_KEY, region_key=REGION_KEY, instance_key=INSTANCE_KEY)
    return sd.SpatialData(images=images, shapes={SHAPES_KEY: shapes}, tables={TABLE_KEY: table})


@contextlib.contextmanager
def _each_warning_once():
    """Warnings raised inside show once each (the same message and category), however often the libraries raise them.

    Writing one store raised zarr's "autosharding will be the default" once
    per array (19 lines for one enhanced slide): the libraries reset the
    warnings registry that would show it once.
    """
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen = set()
    for w in caught:
        key = (w.category, str(w.message))
        if key not in seen:
            seen.add(key)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


def write_spatialdata(adata, path, source=None) -> Path:
    """Write :func:`to_spatialdata` of ``adata`` to the zarr store ``path``, atomically; returns ``path``.

    The store is written into a temporary folder beside ``path`` and renamed
    onto it (a previous store or file at ``path`` is replaced only then);
    on any error nothing is left behind and the previous output is kept.
    """
    path = Path(path)
    if not is_spatialdata_path(path):
        raise InputError(path, "output", "a SpatialData store must end in .zarr")
    sdata = to_spatialdata(adata, source=source)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    new, old = staging / path.name, staging / "previous"
    moved = False
    try:
        with _each_warning_once():
            sdata.write(new)
        if path.exists() or path.is_symlink():
            os.replace(path, old)
            moved = True
        os.replace(new, path)
        moved = False
    except BaseException:
        if moved:
            with contextlib.suppress(OSError):
                os.replace(old, path)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
