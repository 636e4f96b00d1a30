"""Writing what the notebooks show: tables as CSV, Markdown and LaTeX (figures: `viz.plots.save_figure`),
each file written to a unique temporary path and renamed into place (`shala_lib.files`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shala_lib.files import atomic_path, write_text_atomic


def write_table(df: pd.DataFrame, directory: str | Path, name: str, floatfmt: str = ".4f") -> list[Path]:
    """A table as CSV and Markdown (and LaTeX), with a name that says what it is."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{name}.csv", directory / f"{name}.md", directory / f"{name}.tex"]
    md = df.map(lambda v: v.replace("\n", "<br>").replace("|", "\\|") if isinstance(v, str) else v)
    markdown = md.to_markdown(index=False, floatfmt=floatfmt) + "\n"
    latex = df.to_latex(index=False, float_format=lambda v: f"{v:{floatfmt}}")
    # each file written beside and renamed into place: a reader never sees half a table
    with atomic_path(paths[0]) as tmp:
        df.to_csv(tmp, index=False)
    write_text_atomic(paths[1], markdown)
    write_text_atomic(paths[2], latex)
    return paths
