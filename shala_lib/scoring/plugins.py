"""Your own methods and metrics, in every process: `SHALA_PLUGINS=mypkg.methods,mypkg.metrics`.

A plugin is a module that calls `register_method` / `register_metric` when imported. The registries
import the modules named in `SHALA_PLUGINS` (comma-separated) whenever they are read, so a method
registered this way is known to notebook kernels and to the training subprocesses that the runner
and notebook 03 start, which inherit the environment. Registering in the notebook itself is enough
for anything that runs in that kernel (tables, figures).
"""

from __future__ import annotations

import importlib
import os

ENV = "SHALA_PLUGINS"


def load_plugins() -> list[str]:
    """Import every module named in `SHALA_PLUGINS` (already imported ones are not re-run)."""
    names = [n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip()]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ImportError(f"{ENV}: cannot import plugin module {name!r}: {e}") from e
    return names
