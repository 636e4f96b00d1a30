"""ipywidgets for looking at single samples: a sample inspector and a run comparer.

Both work from tables alone (items + predictions), so they open on any run's output. Callbacks
are plain methods (`apply_filters`, `step`, `show_id`, ...) so they are testable without a browser.
"""

from __future__ import annotations

from collections.abc import Mapping

import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from shala_lib.data.specs import DatasetSpec
from shala_lib.generation.predictions import pred_vector
from shala_lib.scoring.methods import method_label, method_palette
from shala_lib.scoring.metrics import bhattacharyya, js_distance

ALL = "(all)"


class SampleInspector:
    """Filter items (dataset, split, ambiguity level, gold class, methods disagree, text search),
    step through them, and see the text, the human distribution beside every method's as grouped
    bars, per-item JSD/BC, and each method's raw output. Items with a clip (`audio_path`, MSP-Podcast)
    get an audio player above the transcript."""

    def __init__(self, items: pd.DataFrame, predictions: Mapping[str, pd.DataFrame], spec: DatasetSpec):
        self.spec = spec
        self.items = items.reset_index(drop=True)
        self.by_id = self.items.set_index(self.items["id"].astype(str))
        self.preds = {m: p.drop_duplicates("id").set_index("id") for m, p in predictions.items()}
        self.methods = list(self.preds)
        opts = lambda col: [ALL, *sorted(map(str, self.items[col].unique()))]  # noqa: E731
        self.dataset = w.Dropdown(options=opts("dataset"), description="dataset")
        self.split = w.Dropdown(options=opts("split"), description="split")
        self.level = w.Dropdown(
            options=[ALL, *[lv for lv in spec.levels if lv in set(self.items["ambiguity_level"])]],
            description="ambiguity",
        )
        self.gold = w.Dropdown(
            options=[ALL, *[c for c in spec.classes if c in set(self.items["majority"])]], description="gold class"
        )
        self.disagree = w.Checkbox(description="methods disagree", value=False)
        self.search = w.Text(description="search", placeholder="text contains...")
        self.prev, self.next = w.Button(description="◀ prev"), w.Button(description="next ▶")
        self.position = w.Label()
        self.audio = w.Audio(autoplay=False, controls=True, loop=False)
        self.audio.layout.display = "none"
        self.out = w.Output()
        for ctl in (self.dataset, self.split, self.level, self.gold, self.disagree, self.search):
            ctl.observe(lambda _change: self.apply_filters(), names="value")
        self.prev.on_click(lambda _b: self.step(-1))
        self.next.on_click(lambda _b: self.step(+1))
        self.ids: list[str] = []
        self.index = 0
        self.apply_filters()

    # --- callbacks -------------------------------------------------------------------------
    def _argmaxes(self, item_id: str) -> set[int]:
        out = set()
        for m in self.methods:
            if item_id in self.preds[m].index:
                p = pred_vector(self.preds[m].at[item_id, "pred"], self.spec.n_classes)
                if np.isfinite(p).all():
                    out.add(int(np.argmax(p)))
        return out

    def apply_filters(self) -> list[str]:
        df = self.items
        for ctl, col in (
            (self.dataset, "dataset"),
            (self.split, "split"),
            (self.level, "ambiguity_level"),
            (self.gold, "majority"),
        ):
            if ctl.value != ALL:
                df = df[df[col].astype(str) == ctl.value]
        if self.search.value.strip():
            needle = self.search.value.strip().lower()
            text = df[list(self.spec.text_fields)].astype(str).agg(" ".join, axis=1).str.lower()
            df = df[text.str.contains(needle, regex=False)]
        ids = df["id"].astype(str).tolist()
        if self.disagree.value:
            ids = [i for i in ids if len(self._argmaxes(i)) > 1]
        self.ids, self.index = ids, 0
        self.render()
        return ids

    def step(self, delta: int) -> str | None:
        if self.ids:
            self.index = (self.index + delta) % len(self.ids)
        self.render()
        return self.current_id

    def show_id(self, item_id: str) -> None:
        """Jump to an item (clearing filters if it is filtered out)."""
        if item_id not in self.ids:
            for ctl in (self.dataset, self.split, self.level, self.gold):
                ctl.value = ALL
            self.disagree.value, self.search.value = False, ""
        self.index = self.ids.index(item_id)
        self.render()

    @property
    def current_id(self) -> str | None:
        return self.ids[self.index] if self.ids else None

    # --- rendering -------------------------------------------------------------------------
    def clip(self, item_id: str) -> tuple[bytes, str] | None:
        """(file bytes, format) of the item's clip, or None when it has none (text datasets, missing file)."""
        from pathlib import Path

        path = self.by_id.loc[item_id].get("audio_path") if "audio_path" in self.by_id.columns else None
        if not isinstance(path, str) or not Path(path).is_file():
            return None
        return Path(path).read_bytes(), Path(path).suffix.lstrip(".").lower() or "wav"

    def summary(self, item_id: str) -> pd.DataFrame:
        """Per-method distribution, JSD, BC, parse status and raw output for one item."""
        row = self.by_id.loc[item_id]
        gold = np.asarray(row["dist"], dtype=float)
        rows = [
            {
                "method": "human",
                **dict(zip(self.spec.classes, gold)),
                "jsd": 0.0,
                "bc": 1.0,
                "status": "",
                "raw_text": "",
            }
        ]
        for m in self.methods:
            if item_id not in self.preds[m].index:
                continue
            rec = self.preds[m].loc[item_id]
            p = pred_vector(rec["pred"], self.spec.n_classes)
            ok = np.isfinite(p).all()
            rows.append(
                {
                    "method": m,
                    **dict(zip(self.spec.classes, p)),
                    "jsd": float(js_distance(p, gold)) if ok else np.nan,
                    "bc": float(bhattacharyya(p, gold)) if ok else np.nan,
                    "status": rec.get("status", ""),
                    "raw_text": str(rec.get("raw_text", "")),
                }
            )
        return pd.DataFrame(rows)

    def figure(self, item_id: str) -> plt.Figure:
        s = self.summary(item_id).set_index("method")[list(self.spec.classes)]
        colors = ["black", *method_palette(s.index[1:]).values()]
        fig, ax = plt.subplots(figsize=(7, 2.8))
        s.T.plot.bar(ax=ax, color=colors, rot=0, width=0.8)
        ax.set(ylim=(0, 1), ylabel="probability", title=f"{item_id}")
        ax.legend([method_label(m) for m in s.index], fontsize=8, ncol=2)
        fig.tight_layout()
        return fig

    def render(self) -> None:
        self.position.value = f"{self.index + 1 if self.ids else 0} / {len(self.ids)}"
        self.out.clear_output(wait=True)
        if not self.ids:
            with self.out:
                print("no item matches the filters")
            return
        item_id = self.current_id
        row = self.by_id.loc[item_id]
        clip = self.clip(item_id)
        if clip is None:
            self.audio.layout.display = "none"
        else:
            self.audio.format, self.audio.value = clip[1], clip[0]
            self.audio.layout.display = None
        with self.out:
            for f in self.spec.text_fields:
                print(f"{f}: {row[f]}")
            print(f"ambiguity: {row['ambiguity_level']}  gold majority: {row['majority']}")
            fig = self.figure(item_id)
            display(fig)
            plt.close(fig)
            display(self.summary(item_id).round(3))

    def widget(self) -> w.Widget:
        filters = w.HBox([self.dataset, self.split, self.level]), w.HBox([self.gold, self.disagree, self.search])
        return w.VBox([*filters, w.HBox([self.prev, self.next, self.position]), self.audio, self.out])


class RunComparer:
    """Pick two methods; scatter their per-item JSD and list the items where A is worst relative
    to B, each clickable into the inspector."""

    def __init__(self, scores: pd.DataFrame, inspector: SampleInspector, n_worst: int = 10):
        self.scores = scores.pivot_table(index="id", columns="method", values="jsd")
        methods = list(self.scores.columns)
        self.inspector = inspector
        self.a = w.Dropdown(options=methods, value=methods[0], description="method A")
        self.b = w.Dropdown(options=methods, value=methods[-1], description="method B")
        self.n_worst = n_worst
        self.out = w.Output()
        self.worst_box = w.VBox()
        for ctl in (self.a, self.b):
            ctl.observe(lambda _c: self.update(), names="value")
        self.update()

    def worst(self) -> pd.DataFrame:
        d = (self.scores[self.a.value] - self.scores[self.b.value]).dropna().sort_values(ascending=False)
        return pd.DataFrame({"id": d.index[: self.n_worst], "jsd_a_minus_b": d.to_numpy()[: self.n_worst]})

    def update(self) -> None:
        worst = self.worst()
        buttons = []
        for item_id, diff in zip(worst["id"], worst["jsd_a_minus_b"]):
            b = w.Button(description=f"{item_id} (+{diff:.3f})", layout=w.Layout(width="260px"))
            b.on_click(lambda _b, i=item_id: self.inspector.show_id(str(i)))
            buttons.append(b)
        self.worst_box.children = tuple(buttons)
        self.out.clear_output(wait=True)
        with self.out:
            fig, ax = plt.subplots(figsize=(3.8, 3.8))
            ax.scatter(self.scores[self.a.value], self.scores[self.b.value], s=8, alpha=0.6)
            ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
            ax.set(xlabel=f"JSD {self.a.value}", ylabel=f"JSD {self.b.value}", xlim=(0, 1), ylim=(0, 1))
            display(fig)
            plt.close(fig)

    def widget(self) -> w.Widget:
        return w.VBox([w.HBox([self.a, self.b]), w.HBox([self.out, self.worst_box])])
