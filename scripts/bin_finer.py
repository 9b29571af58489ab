"""Rule bin_finer: finer data (molecules, GEM, beads, cells) -> disk pseudo-spots on the sample's lattice, and the truth at the enhanced positions."""

from _common import reader_options, run


def main(snakemake, log):
    from stentrans.datasets import check_sha256, data_path
    from stentrans.io import PseudoSpotConfig, write_pseudospots

    b = snakemake.params.binning
    src = data_path(snakemake.input.data)
    if snakemake.params.sha256:
        log.info("%s: sha256 %s (as expected)", src, check_sha256(src, snakemake.params.sha256))
    cfg = PseudoSpotConfig(spot_diameter=b.get("spot_diameter"), um_per_unit=b.get("um_per_unit"))
    reader, columns = reader_options(b)
    lattice = snakemake.params.lattice
    spots, truth = write_pseudospots(src, snakemake.output.spots, lattice, b["spacing"], truth_output=snakemake.output.truth, config=cfg, reader=reader, **columns)
    d = spots.uns["binning"]
    log.info("%d %s pseudo-spots x %d genes (spacing %g, diameter %g) -> %s", spots.n_obs, lattice, spots.n_vars, d["spacing"], d["spot_diameter"], snakemake.output.spots)
    log.info("truth: %d positions (%d new) -> %s", truth.n_obs, int(truth.obs["is_imputed"].sum()), snakemake.output.truth)


run(snakemake, main)  # noqa: F821
