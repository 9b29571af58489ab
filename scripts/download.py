"""Rule download: fetch a sample's URLs (sha256-checked) into its folder."""

from _common import fail, start

log = start(snakemake)  # noqa: F821

from stentrans._errors import InputError  # noqa: E402
from stentrans.download import fetch  # noqa: E402

try:
    fetch(
        snakemake.params.locations,  # noqa: F821
        snakemake.output[0],  # noqa: F821
        snakemake.params.sha256,  # noqa: F821
        retries=snakemake.params.retries,  # noqa: F821
        backoff=snakemake.params.backoff,  # noqa: F821
    )
except InputError as err:
    fail(f"download: error: {err}")
