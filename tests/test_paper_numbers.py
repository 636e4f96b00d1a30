"""Every number stored from the paper is the paper's: Tables 1-2, Section 5.2, Tables 3/14-16 and
5-10, each checked against the paper's text (/work/shared/paper, beside the data), and Table 1 read
beside ours."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shala_lib.data.stats import paper_dataset_stats
from shala_lib.evaluation.analysis import paper_ambiguity_findings
from shala_lib.evaluation.reasoning import paper_reasoning_items
from shala_lib.evaluation.tables import Block, block_scores, paper_table1, table1_vs_paper, table_blocks

PAPER = Path(__file__).resolve().parents[2] / "shared" / "paper" / "shala_llm_paper.txt"
TABLE1_BLOCKS = {
    "ChaosNLI": "chaosnli",
    "ChaosNLI-M": "chaosnli_mnli",
    "ChaosNLI-S": "chaosnli_snli",
    "MSP-Podcast(Speech + Text)": "msp_podcast",
    "GoEmotions(Text)": "goemotions",
}
TABLE1_METHODS = {
    "Zero-shot": "zero_shot",
    "MLS": "mls",
    "SHALA-LLM(w/o Ambi-En)": "shala_no_ambi",
    "SHALA-LLM": "shala",
}
METRICS = ("jsd", "bc", "acc", "f1", "wf1")


@pytest.fixture(scope="module")
def paper() -> str:
    if not PAPER.is_file():
        pytest.skip(f"the paper's text is not at {PAPER}")
    return PAPER.read_text().replace("\\", "")  # the text escapes punctuation: "0\.375", "ChaosNLI\-M"


def _table_line(paper: str, number: int) -> str:
    """The text of 'Table N:' up to the end of its line."""
    start = paper.index(f"Table {number}:")
    return paper[start : paper.index("\n", start)]


def _split(text: str, names: list[str]) -> list[tuple[str, str]]:
    """(name, text up to the next name) for each occurrence of a name (longest names tried first)."""
    pattern = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    hits = list(re.finditer(pattern, text))
    return [(h.group(), text[h.end() : nxt.start() if nxt else len(text)]) for h, nxt in zip(hits, hits[1:] + [None])]


def _strings(csv: str) -> pd.DataFrame:
    """A resources CSV with every cell as written (0.60 stays "0.60")."""
    with resources.files("shala_lib.resources").joinpath(csv).open() as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False)


def test_every_table1_number_is_the_papers(paper):
    """Each stored Table 1 row, values and printed relative changes, is its row of the paper, and every
    row of the paper is stored: 5 blocks x 4 methods."""
    body = _table_line(paper, 1).split("W-F1 (↑uparrow)", 1)[1]
    stored = _strings("paper_table1.csv").set_index(["dataset", "method"])
    seen = []
    for block, text in _split(body, list(TABLE1_BLOCKS)):
        for method, row in _split(text, list(TABLE1_METHODS)):
            key = (TABLE1_BLOCKS[block], TABLE1_METHODS[method])
            cells = re.findall(r"(\d\.\d{3})\s*(?:\(([+-]\d+\.\d)%\))?", row)
            assert len(cells) == 5, (key, row)
            assert [v for v, _ in cells] == [stored.loc[key, m] for m in METRICS], key
            assert [c for _, c in cells] == [stored.loc[key, f"{m}_pct"] for m in METRICS], key
            assert stored.loc[key, "jsd_log_base"] == "2" and "Table 1" in stored.loc[key, "source"]
            seen.append(key)
    assert len(seen) == 20 and sorted(seen) == sorted(stored.index)
    # GoEmotions from Table 1, three decimals (Table 2 rounds them)
    go = paper_table1("goemotions").set_index("method").loc["shala", list(METRICS)]
    assert go.tolist() == [0.465, 0.756, 0.600, 0.589, 0.595]


def test_table1_printed_changes_follow_from_its_values_but_in_one_row():
    """The paper's bracketed changes are (value - zero-shot) / zero-shot, signed + = better, to 0.1
    points, except MSP-Podcast's MLS row (its note says so) and a rounding of 0.1 in one cell."""
    t = paper_table1()
    off = []
    for _, r in t[t["method"] != "zero_shot"].iterrows():
        zs = t[(t["dataset"] == r["dataset"]) & (t["method"] == "zero_shot")].iloc[0]
        for m in METRICS:
            sign = -1 if m == "jsd" else 1
            change = sign * (r[m] - zs[m]) / zs[m] * 100
            if abs(change - r[f"{m}_pct"]) > 0.051:
                off.append((r["dataset"], r["method"], m))
    assert off == [("msp_podcast", "mls", m) for m in METRICS] + [("msp_podcast", "shala", "bc")]
    assert "do not follow" in t.set_index(["dataset", "method"]).loc[("msp_podcast", "mls"), "note"]


def test_every_table2_number_is_the_papers(paper):
    """Each published_results.csv row is its row of the paper's Table 2, cell by cell as printed
    ("–" where it reports nothing)."""
    body = _table_line(paper, 2).split("WF1↑uparrow", 1)[1].split("Tables[1]", 1)[0]
    blocks = {"ChaosNLI": "chaosnli", "ChaosNLI-M": "chaosnli_mnli", "ChaosNLI-S": "chaosnli_snli"}
    blocks |= {"MSP-Podcast": "msp_podcast", "GoEmotions": "goemotions"}
    stored = _strings("published_results.csv")
    methods = sorted(set(stored["method"]))
    seen = []
    for block, text in _split(body, list(blocks)):
        for method, row in _split(text, methods):
            row = re.sub(r"^.*?et al\.\(\[[^\]]+\]\([^)]+\)\)", "", row)  # the citation
            mine = stored[(stored["dataset"] == blocks[block]) & (stored["method"] == method)]
            assert len(mine) == 1, (block, method)
            assert row == "".join(mine.iloc[0][m] or "–" for m in METRICS), (block, method, row)
            seen.append((blocks[block], method))
    assert sorted(seen) == sorted(zip(stored["dataset"], stored["method"]))
    assert len(seen) == 18
    go = stored.set_index(["dataset", "method"]).loc[("goemotions", "SHALA-LLM")]
    assert "0.465 / 0.756 / 0.600 / 0.589 / 0.595" in go["note"]  # Table 1's values, named


def test_section_5_2_numbers_are_the_papers(paper):
    """Every stored Section 5.2 number is in the sentence it quotes, and that sentence is the paper's."""
    f = paper_ambiguity_findings()
    for _, r in f.iterrows():
        sentence = r["quote"].split(": ", 1)[1].split(" (boxplots")[0]
        flat = re.sub(r"(?<=\w)(?=SHALA-LLM|MLS)|(?<=SHALA-LLM)(?=\w)", "", sentence)
        assert flat.replace(" ", "") in paper.replace(" ", "").replace("p>0.05p>0.05", "p>0.05"), sentence
        printed = [float(x) for x in re.findall(r"\d+\.\d+", sentence)]
        assert abs(r["value"]) in printed, (r["quantity"], sentence)  # a change is a drop: negative
        if r["quantity"] == "change_%":
            assert r["value"] < 0 and re.search("decrease|drop", sentence)
    key = f.set_index(["method", "metric", "quantity"])["value"]
    assert key["shala", "f1", "change_%"] == -32.0 and key["mls", "f1", "change_%"] == -40.2
    assert key["mls", "bc", "change_%"] == pytest.approx((0.693 - 0.970) / 0.970 * 100, abs=0.005)


def test_dataset_statistics_are_the_papers(paper):
    """Tables 5-10 as stored are the paper's, row by row in its order (counts, entropies)."""
    stats = paper_dataset_stats()
    assert sorted(set(stats["table"])) == [5, 6, 7, 8, 9, 10]
    for table, part in stats.groupby("table"):
        text = re.sub(r"(\d),(\d{3})", r"\1\2", _table_line(paper, table))  # 1,168 -> 1168
        expected = ""
        for dataset, rows in part.groupby("dataset", sort=False):
            expected += dataset if table in (5, 8) else ""
            for _, r in rows.iterrows():
                entropy = "" if np.isnan(r["mean_entropy"]) else f"{r['mean_entropy']:.4f}"
                expected += f"{r['paper_label']}{r['count']}{entropy}"
        assert expected in text, table
    totals = stats.groupby(["table", "dataset"])["count"].sum()
    assert totals[7, "GoEmotions"] == totals[10, "GoEmotions"] == 6567
    assert totals[6, "MSP-Podcast"] == totals[9, "MSP-Podcast"] == 12955
    assert totals[5, "ChaosNLI"] == totals[8, "ChaosNLI"] == 3113


def test_reasoning_items_are_the_papers(paper):
    """Tables 3 and 14-16: each item's text and each row's distribution as printed."""
    items = _strings("paper_reasoning_items.csv")
    assert sorted(set(items["table"].astype(int))) == [3, 14, 15, 16]
    for table, part in items.groupby("table"):
        text = _table_line(paper, int(table)).split("Table ", 2)[1]  # up to the next table's caption
        assert part.iloc[0]["premise"] in text and part.iloc[0]["hypothesis"] in text
        starts, at = [], text.index("Model Reasoning")
        for label in part["row"]:  # each row's text runs from its label to the next row's label
            at = text.index(label, at)
            starts.append(at)
        for (_, r), a, b in zip(part.iterrows(), starts, [*starts[1:], len(text)]):
            dist = r["entailment"] + r["neutral"] + r["contradiction"]  # as printed: ".45" ".17" ".38"
            assert dist in text[a:b], (table, r["row"])
    levels = paper_reasoning_items().drop_duplicates("table").set_index("table")["ambiguity_level"]
    assert levels.to_dict() == {3: "high", 14: "high", 15: "medium", 16: "low"}


def test_table1_beside_the_papers_on_a_fixture(tmp_path):
    """Our rows beside the paper's, metric by metric: value, paper, difference, both changes vs
    zero-shot; the blocks the paper reports, each method of the paper (NaN where we have none)."""
    from shala_lib.data.specs import CHAOSNLI
    from shala_lib.pipeline.artifacts import write_table

    items = pd.DataFrame({"id": list("abcd"), "subset": ["snli", "mnli", "mnli", "snli"]})
    gold = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0, 1.0, 0]])
    preds = {"zero_shot": np.tile([1.0, 0, 0], (4, 1)), "shala": gold.copy()}
    blocks = table_blocks(CHAOSNLI, items)
    t = table1_vs_paper(block_scores(preds, gold, CHAOSNLI.classes, blocks), blocks)
    assert len(t) == 3 * 4 * 5 and t["block"].unique().tolist() == ["ChaosNLI", "ChaosNLI-M", "ChaosNLI-S"]
    row = t.set_index(["block", "method", "metric"])
    # ChaosNLI, zero-shot accuracy: ours 1/4, the paper's 0.603
    z = row.loc[("ChaosNLI", "Zero-shot", "Acc")]
    assert (z["ours"], z["paper"]) == (0.25, 0.603) and z["ours_minus_paper"] == pytest.approx(-0.353)
    assert np.isnan(z["ours_vs_zs_%"]) and np.isnan(z["paper_vs_zs_%"])
    s = row.loc[("ChaosNLI-M", "SHALA-LLM", "JSD")]  # perfect predictions: JSD 0 vs the paper's 0.173
    assert (s["ours"], s["paper"], s["ours_minus_paper"]) == (0.0, 0.173, -0.173)
    assert s["ours_vs_zs_%"] == pytest.approx(100.0) and s["paper_vs_zs_%"] == 54.0
    f1 = row.loc[("ChaosNLI", "SHALA-LLM", "F1")]  # ours 1.0 vs zero-shot's macro F1 over 3 classes (0.4/3)
    assert f1["ours_vs_zs_%"] == pytest.approx((1 - 0.4 / 3) / (0.4 / 3) * 100)
    assert row.loc[("ChaosNLI-S", "MLS", "BC"), "paper"] == 0.770  # a method we did not run: ours NaN
    assert np.isnan(row.loc[("ChaosNLI-S", "MLS", "BC"), "ours"])
    paths = write_table(t, tmp_path, "table1_chaosnli_t_vs_paper", floatfmt=".3f")
    assert [p.suffix for p in paths] == [".csv", ".md", ".tex"]
    back = pd.read_csv(paths[0])
    assert back.shape == t.shape and "| ChaosNLI-M " in paths[1].read_text()
    # a dataset the paper does not report: no rows
    other = [Block("Custom", "custom_dataset", np.ones(4, dtype=bool))]
    assert table1_vs_paper(block_scores(preds, gold, CHAOSNLI.classes, other), other).empty
