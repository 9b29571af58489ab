"""The README says what a user needs, in the order they need it, and its plotting code runs."""

from __future__ import annotations

import re
import tomllib

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from conftest import REPO

README = (REPO / "README.md").read_text()


def _section(title: str) -> str:
    """The text of the README's ``## title`` section."""
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, flags=re.S | re.M)
    assert m, f"no section {title!r}"
    return m.group(1)


def _fenced(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


def test_cpu_torch_tip_comes_before_the_install_block():
    demo = _section("Install and run the demo")
    first_install = demo.index("```bash\npip install")
    tip = demo.index("download.pytorch.org/whl/cpu")
    assert tip < first_install
    assert "torch==2.13.0" in demo[:first_install]  # the version CI installs (.ci/run)
    assert "torch==2.13.0" in (REPO / ".ci" / "run").read_text()


def test_demo_time_is_stated_once_and_config_agrees():
    said = re.findall(r"about (\d+) minutes? on 2 CPU cores", README)
    assert len(said) == 1, said
    assert said[0] in re.findall(r"about (\d+) minutes? on 2 CPU cores", _section("Install and run the demo"))
    assert not re.search(r"\b\d+\s*[-–]\s*\d+ minutes", README)
    header = (REPO / "config.yaml").read_text().split("\n\n", 1)[0]
    assert f"about {said[0]} minute" in header, header


def test_demo_section_ends_at_the_results_page():
    demo = _section("Install and run the demo").strip()
    last = re.split(r"(?<=[.!?])\s+", demo)[-1]
    assert "`results/page/results.md`" in last, last


def test_every_extra_is_named_where_it_is_needed():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"workflow", "test", "squidpy", "leiden", "spatialdata"} <= set(extras)
    missing = [e for e in extras if f'.[{e}]"' not in README and f"`{e}` extra" not in README]
    assert not missing, f"README never names the extra(s) {missing}"
    plotting = _section("Plotting an enhanced slide")
    assert "`squidpy` extra" in plotting and "`spatialdata` extra" in plotting and "`leiden` extra" in plotting


def test_readme_stays_short():
    assert len(README.splitlines()) <= 270


def test_readme_plotting_code_runs_on_an_enhanced_slide(tmp_path, monkeypatch):
    """The plotting block, with GENE a real gene, on `stentrans enhance` outputs (.h5ad and .zarr) of a slide with an image."""
    pytest.importorskip("squidpy")
    pytest.importorskip("spatialdata_plot")
    import matplotlib.pyplot as plt

    import stentrans as st
    from stentrans import cli

    (code,) = _fenced(_section("Plotting an enhanced slide"), "python")
    plt.close("all")  # figures other tests left open are not this block's
    a = st.datasets.simulate("hex", n_genes=6, seed=0, size="st")
    st.tl.write_h5ad(a, tmp_path / "slide.h5ad")
    for out in ("enhanced.h5ad", "enhanced.zarr"):
        assert cli.main(["enhance", str(tmp_path / "slide.h5ad"), "-o", str(tmp_path / out)]) == 0
    gene = str(a.var_names[0])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(plt, "show", lambda *a, **k: None)
    exec(compile(code.replace('"GENE"', repr(gene)), "README.md", "exec"), {})
    figs = [plt.figure(n) for n in plt.get_fignums()]
    assert len(figs) == 3  # two squidpy plots, one spatialdata-plot
    # each figure draws every enhanced spot
    import anndata as ad

    n = ad.read_h5ad(tmp_path / "enhanced.h5ad").n_obs
    for fig in figs:
        counts = [len(c.get_paths()) for ax in fig.axes for c in ax.collections]
        assert n in counts, counts
    plt.close("all")


def test_readme_claim_about_sc_pl_spatial_holds(tmp_path):
    """README: sc.pl.spatial stops with StopIteration on a slide without an image unless given img_key=None."""
    import matplotlib.pyplot as plt
    import scanpy as sc

    import stentrans as st

    a = st.datasets.simulate("square", n_genes=4, seed=0, size="st")
    (lib,) = a.uns["spatial"]
    a.uns["spatial"][lib]["images"] = {}  # as a Space Ranger folder without tissue images reads
    enh = st.tl.enhance(a, model="linear", progress=False)
    gene = enh.var_names[0]
    with pytest.warns(FutureWarning), pytest.raises(StopIteration):
        sc.pl.spatial(enh, color=gene, show=False)
    with pytest.warns(FutureWarning):
        sc.pl.spatial(enh, color=gene, img_key=None, show=False)
    assert any(len(c.get_paths()) == enh.n_obs for c in plt.gca().collections)
    assert np.isfinite(enh.obsm["spatial"]).all()
    plt.close("all")
