"""The sample inspector in a real browser: JupyterLab with a live kernel, driven by headless Chromium
(Debian's package) through Playwright. Checks by screenshot that the inspector renders (the human
bars and every method's bar colour are on screen) and responds to a filter change (the picture of
the widget changes and the text shows an item of the chosen level).

Needs a Chromium: `bash scripts/install.sh --with-browser` installs Debian's (CI does), or set
SHALA_CHROMIUM to a Chromium/Chrome binary.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import matplotlib.colors as mcolors
import matplotlib.image as mpimg
import nbformat
import numpy as np
import pytest

from shala_lib.data.loading import load
from shala_lib.scoring.methods import method_palette

METHODS = ("zero_shot", "shala")
TOKEN = "shala-browser-test"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    for cand in (os.environ.get("SHALA_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if cand and (path := shutil.which(cand)):
            return path
    pytest.fail(
        "no Chromium found for the browser test: run `bash scripts/install.sh --with-browser` "
        "(installs Debian's chromium) or set SHALA_CHROMIUM"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_inputs(folder: Path, shared_data: Path) -> dict[str, object]:
    """12 real ChaosNLI test items (4 per ambiguity level) and two methods' predictions, generated:
    'zero_shot' says the majority class with certainty, 'shala' the human distribution smoothed."""
    df = load("chaosnli", data_dir=shared_data)
    test = df[df["split"] == "test"]
    items = test.groupby("ambiguity_level", observed=True).head(4).sort_values("id").reset_index(drop=True)
    items.to_parquet(folder / "items.parquet")
    for method in METHODS:
        with open(folder / f"{method}.jsonl", "w", encoding="utf-8") as fh:
            for row in items.itertuples():
                gold = np.asarray(row.dist, dtype=float)
                pred = np.eye(3)[int(np.argmax(gold))] if method == "zero_shot" else 0.7 * gold + 0.1
                fh.write(
                    json.dumps(
                        {
                            "id": row.id,
                            "pred": pred.round(4).tolist(),
                            "status": "ok",
                            "raw_text": json.dumps(dict(zip(("e", "n", "c"), pred.round(2).tolist()))),
                        }
                    )
                    + "\n"
                )
    medium = items[items["ambiguity_level"] == "medium"]
    return {"n": len(items), "n_medium": len(medium), "medium_premises": set(medium["premise"])}


def _write_notebook(folder: Path) -> Path:
    code = f"""
import pandas as pd
from IPython.display import display
from shala_lib.generation.predictions import read_predictions
from shala_lib.data.specs import CHAOSNLI
from shala_lib.viz.widgets import SampleInspector

items = pd.read_parquet("items.parquet")
inspector = SampleInspector(items, {{m: read_predictions(f"{{m}}.jsonl") for m in {list(METHODS)!r}}}, CHAOSNLI)
display(inspector.widget())
"""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(code.strip())]
    path = folder / "inspector.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture()
def jupyterlab(tmp_path: Path) -> Iterator[str]:
    """A JupyterLab server on a free loopback port, rooted in tmp_path; yields its base URL."""
    port = _free_port()
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    env = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
    }
    log = open(tmp_path / "jupyterlab.log", "w")  # noqa: SIM115 - closed below
    args = [
        *("--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--ServerApp.root_dir={tmp_path}"),
        *(f"--IdentityProvider.token={TOKEN}", "--allow-root", "--LabApp.extension_manager=readonly"),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", *args], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                log.flush()
                pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'jupyterlab.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _colour_pixels(png: Path, hex_colour: str, tol: float = 0.04) -> int:
    img = mpimg.imread(png)[..., :3]
    target = np.asarray(mcolors.to_rgb(hex_colour))
    return int((np.abs(img - target).max(axis=-1) < tol).sum())


def test_inspector_renders_and_responds_in_jupyterlab(tmp_path: Path, shared_data: Path, jupyterlab: str) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    facts = _write_inputs(tmp_path, shared_data)
    _write_notebook(tmp_path)
    before, after = tmp_path / "inspector_before.png", tmp_path / "inspector_after.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{jupyterlab}/lab/tree/inspector.ipynb?token={TOKEN}")
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
        accept = page.locator(".jp-Dialog .jp-mod-accept")  # "Select Kernel" (python3 preselected)
        try:
            accept.wait_for(timeout=10_000)
            accept.click()
        except PlaywrightTimeout:
            pass  # the notebook started its kernel without asking
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=60_000)
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

        output = page.locator(".jp-OutputArea-output").filter(has=page.locator(".widget-dropdown")).first
        position = page.locator(".widget-label", has_text=" / ").first
        expect(position).to_have_text(f"1 / {facts['n']}", timeout=120_000)
        expect(output.locator("img").first).to_be_visible(timeout=60_000)  # the grouped bars
        output.screenshot(path=str(before))
        text_before = output.inner_text()

        level = output.locator(".widget-dropdown", has_text="ambiguity").locator("select")
        level.select_option("medium")
        expect(position).to_have_text(f"1 / {facts['n_medium']}", timeout=60_000)
        expect(output.locator("img").first).to_be_visible(timeout=60_000)
        page.wait_for_timeout(500)  # let the new figure paint
        output.screenshot(path=str(after))
        text_after = output.inner_text()
        browser.close()

    # renders: the picture holds the human bars (black) and each method's colour, and is not blank
    for colour in ("#000000", *(method_palette(METHODS)[m] for m in METHODS)):
        assert _colour_pixels(before, colour) > 200, f"{colour} bars missing from {before}"
    img_before, img_after = mpimg.imread(before)[..., :3], mpimg.imread(after)[..., :3]
    assert len(np.unique(img_before.reshape(-1, 3), axis=0)) > 50
    # responds: the filter change redrew the inspector on an item of the chosen level
    assert text_after != text_before and "ambiguity: medium" in text_after
    assert any(p in text_after for p in facts["medium_premises"])  # type: ignore[attr-defined]
    if img_before.shape == img_after.shape:
        assert np.abs(img_before - img_after).max(axis=-1).mean() > 0.001
    for colour in ("#000000", *(method_palette(METHODS)[m] for m in METHODS)):
        assert _colour_pixels(after, colour) > 200, f"{colour} bars missing from {after}"
