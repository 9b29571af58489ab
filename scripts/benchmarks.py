"""Rule benchmarks: every job's run time and memory (Snakemake benchmark files) in one table."""

from pathlib import Path

from _common import start

log = start(snakemake)  # noqa: F821

import pandas as pd  # noqa: E402

from stentrans._utils import atomic_path  # noqa: E402

folder = Path(snakemake.params.folder)  # noqa: F821
rows = []
for path in sorted(folder.glob("*/*.tsv")):
    if path.parent.name == "benchmarks":
        continue
    df = pd.read_csv(path, sep="\t")
    df.insert(0, "job", path.stem)
    df.insert(0, "rule", path.parent.name)
    rows.append(df)
table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["rule", "job", "s"])
keep = [c for c in ["rule", "job", "s", "h:m:s", "max_rss", "cpu_time", "mean_load"] if c in table.columns]
with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
    table[keep].to_csv(tmp, sep="\t", index=False)
log.info("%d benchmark rows -> %s", len(table), snakemake.output[0])  # noqa: F821
