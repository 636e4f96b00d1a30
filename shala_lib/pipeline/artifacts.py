"""Writing what the notebooks show: tables as CSV, Markdown and LaTeX (figures: `viz.plots.save_figure`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def write_table(df: pd.DataFrame, directory: str | Path, name: str, floatfmt: str = ".4f") -> list[Path]:
    """A table as CSV and Markdown (and LaTeX), with a name that says what it is."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{name}.csv", directory / f"{name}.md", directory / f"{name}.tex"]
    df.to_csv(paths[0], index=False)
    md = df.map(lambda v: v.replace("\n", "<br>").replace("|", "\\|") if isinstance(v, str) else v)
    paths[1].write_text(md.to_markdown(index=False, floatfmt=floatfmt) + "\n")
    paths[2].write_text(df.to_latex(index=False, float_format=lambda v: f"{v:{floatfmt}}"))
    return paths
