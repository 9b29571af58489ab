"""Rule qc: read the sample (any supported format), filter spots and genes."""

from _common import fail, run_cli, start

log = start(snakemake)  # noqa: F821

from stentrans._errors import InputError  # noqa: E402
from stentrans.download import check_sha256, data_path  # noqa: E402

p = snakemake.params  # noqa: F821
data = data_path(snakemake.input.data)  # noqa: F821
if p.sha256:
    if data.is_file():
        try:
            log.info("%s: sha256 %s (as expected)", data, check_sha256(data, p.sha256))
        except InputError as err:
            fail(f"qc: error: {err}")
    else:
        log.warning("%s is a folder: its sha256 in the sample table is not checked", data)
run_cli(["qc", data, "-o", snakemake.output[0], "--lattice", p.lattice, "--min-counts", p.min_counts, "--min-spot-fraction", p.min_spot_fraction])  # noqa: F821
