"""Inference and GRPO training on a tiny random Qwen2-style model built by code (seconds on CPU)."""

import json
import math
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from shala_lib.config import ExperimentConfig, paper_grpo
from shala_lib.datasets import load
from shala_lib.inference import attach_gold, generate_hf, predict, read_predictions
from shala_lib.models import format_prompt, load_model
from shala_lib.prompts import build_messages
from shala_lib.rewards import make_reward_func, shala_reward
from shala_lib.specs import CHAOSNLI
from shala_lib.tiny import build_tiny_model


@pytest.fixture(scope="module")
def chaos(shared_data):
    return load("chaosnli", data_dir=shared_data)


@pytest.fixture(scope="module")
def tiny(chaos, tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "model"
    texts = (chaos["premise"] + " " + chaos["hypothesis"]).tolist()[:400]
    return str(build_tiny_model(path, texts))


@pytest.fixture(scope="module")
def tiny_varied(chaos, tmp_path_factory):
    """The tiny model with a wider initialisation: its greedy outputs vary with the input (at the
    default 0.02 every prompt decodes to the same repeated token, which would make equality vacuous)."""
    path = tmp_path_factory.mktemp("tiny_varied") / "model"
    texts = (chaos["premise"] + " " + chaos["hypothesis"]).tolist()[:400]
    return str(build_tiny_model(path, texts, initializer_range=0.5))


def test_batched_greedy_equals_one_by_one(tiny_varied, chaos):
    model, tok = load_model(tiny_varied, device="cpu")
    items = chaos[chaos["split"] == "test"].head(6)
    prompts = [format_prompt(tok, build_messages(CHAOSNLI, r)) for _, r in items.iterrows()]
    batched = generate_hf(model, tok, prompts, max_new_tokens=12, batch_size=6, progress=False)
    single = [generate_hf(model, tok, [p], max_new_tokens=12, batch_size=1, progress=False)[0] for p in prompts]
    assert [g.text for g in batched] == [g.text for g in single]
    assert len({g.text for g in batched}) == len(prompts)  # the outputs differ: the comparison means something
    assert all(1 <= g.n_tokens <= 12 for g in batched)


def test_static_cache_keeps_one_shape_per_call_and_the_same_greedy_outputs(tiny_varied, chaos, monkeypatch):
    """A compiled static-cache decode step is built per input shape: every batch of a call must have
    the same (rows, padded length), the short last batch included, and the outputs must not change."""
    model, tok = load_model(tiny_varied, device="cpu")
    items = chaos[chaos["split"] == "test"].head(7)
    prompts = [format_prompt(tok, build_messages(CHAOSNLI, r)) for _, r in items.iterrows()]
    shapes, generate = [], model.generate

    def spy(*args, **kwargs):
        shapes.append(tuple(kwargs["input_ids"].shape))
        return generate(*args, **kwargs)

    monkeypatch.setattr(model, "generate", spy)
    static = generate_hf(model, tok, prompts, max_new_tokens=12, batch_size=3, cache="static", progress=False)
    assert len(shapes) == 3 and len(set(shapes)) == 1 and shapes[0][0] == 3 and shapes[0][1] % 64 == 0
    dynamic = generate_hf(model, tok, prompts, max_new_tokens=12, batch_size=3, cache="dynamic", progress=False)
    assert len(set(shapes[3:])) == 3  # the dynamic path lets shapes vary (3, 3 and 1 rows)
    assert len(static) == 7 and [g.text for g in static] == [g.text for g in dynamic]
    assert [g.n_tokens for g in static] == [g.n_tokens for g in dynamic]
    assert len({g.text for g in static}) == 7


def test_compiled_static_decode_step_is_traced_once_per_predict_call(tiny_varied, chaos, tmp_path):
    """What makes the static cache fast on a GPU is a decode step compiled once and replayed. Force
    transformers' compilation on CPU (dynamo, eager backend, full graph) and count the graphs it
    builds: one for a whole `predict` call over three chunks whose own shapes differ (3, 3 and 1
    rows; different longest prompts), none for a second call, and the same outputs as the dynamic
    cache."""
    import torch
    from torch._dynamo.utils import counters
    from transformers import CompileConfig

    from shala_lib.inference import prompt_lengths, static_shape

    model, tok = load_model(tiny_varied, device="cpu")
    items = chaos[chaos["split"] == "test"].head(7)
    prompts = [format_prompt(tok, build_messages(CHAOSNLI, r)) for _, r in items.iterrows()]
    chunk_shapes = {static_shape(prompt_lengths(tok, prompts[i : i + 3]), 3) for i in range(0, 7, 3)}
    assert len(chunk_shapes) >= 2  # fixing the shape per chunk would trace more than one graph
    config = CompileConfig(backend="eager", fullgraph=True)
    config._compile_all_devices = True  # transformers compiles only on accelerators unless told
    model.generation_config.compile_config = config
    torch._dynamo.reset()
    counters.clear()
    try:
        kw = dict(batch_size=3, chunk_size=3, max_new_tokens=12, progress=False)
        static = predict(items, CHAOSNLI, model, tok, tmp_path / "static.jsonl", cache="static", **kw)
        graphs_first = counters["stats"]["unique_graphs"]
        predict(items, CHAOSNLI, model, tok, tmp_path / "static_again.jsonl", cache="static", **kw)
        graphs_second = counters["stats"]["unique_graphs"] - graphs_first
        dynamic = predict(items, CHAOSNLI, model, tok, tmp_path / "dynamic.jsonl", cache="dynamic", **kw)
    finally:
        torch._dynamo.reset()
    assert graphs_first == 1 and graphs_second == 0
    assert static["raw_text"].tolist() == dynamic["raw_text"].tolist()
    assert static["n_tokens"].tolist() == dynamic["n_tokens"].tolist()
    assert static["raw_text"].nunique() == 7


def test_auto_cache_is_static_only_for_half_precision_on_cuda(monkeypatch):
    from types import SimpleNamespace

    import torch

    from shala_lib.inference import resolve_cache, static_shape

    def model(device: str, dtype: torch.dtype):
        return SimpleNamespace(parameters=lambda: iter([SimpleNamespace(device=torch.device(device), dtype=dtype)]))

    assert resolve_cache(model("cuda", torch.bfloat16), "auto") == "static"
    assert resolve_cache(model("cuda", torch.float16), "auto") == "static"
    assert resolve_cache(model("cuda", torch.float32), "auto") == "dynamic"  # fp32 weights (training, autocast)
    assert resolve_cache(model("cpu", torch.bfloat16), "auto") == "dynamic"
    assert resolve_cache(model("cpu", torch.float32), "static") == "static"
    monkeypatch.setattr(torch, "is_autocast_enabled", lambda *a: True)
    assert resolve_cache(model("cuda", torch.bfloat16), "auto") == "dynamic"
    with pytest.raises(ValueError, match="cache must be"):
        resolve_cache(model("cpu", torch.float32), "compiled")
    assert static_shape(np.array([70, 3, 128]), 64) == (3, 128)
    assert static_shape(np.array([129]), 64) == (1, 192)
    with pytest.raises(ValueError, match="at least one prompt"):
        static_shape(np.array([], dtype=int), 8)


def test_vllm_backend_builds_one_engine_and_records_every_output(tiny, chaos, tmp_path, monkeypatch):
    """Our vLLM adapter against a stand-in `vllm` module (no vLLM wheel fits these machines): one
    engine per call however many chunks, greedy sampling params, every output parsed and recorded."""
    from types import SimpleNamespace

    calls: dict[str, list] = {"engines": [], "params": [], "prompts": []}

    class LLM:
        def __init__(self, model, dtype):
            calls["engines"].append((model, dtype))

        def generate(self, prompts, params, use_tqdm=False):
            calls["prompts"].append(len(prompts))
            texts = ['{"entailment": 0.5, "neutral": 0.3, "contradiction": 0.2}', "no idea"]
            return [
                SimpleNamespace(outputs=[SimpleNamespace(text=texts[i % 2], token_ids=list(range(7)))])
                for i in range(len(prompts))
            ]

    def sampling_params(max_tokens, temperature):
        calls["params"].append((max_tokens, temperature))

    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(LLM=LLM, SamplingParams=sampling_params))
    model, tok = load_model(tiny, device="cpu")
    items = chaos[chaos["split"] == "test"].head(10)
    out = tmp_path / "vllm.jsonl"
    table = predict(items, CHAOSNLI, model, tok, out, backend="vllm", chunk_size=4, max_new_tokens=9, progress=False)
    assert calls["engines"] == [(tiny, "bfloat16")]
    assert calls["params"] == [(9, 0.0)] * 3 and calls["prompts"] == [4, 4, 2]
    assert table["id"].tolist() == items["id"].tolist() and (table["n_tokens"] == 7).all()
    assert table["status"].tolist() == [
        "ok",
        "no_json",
        "ok",
        "no_json",
        "ok",
        "no_json",
        "ok",
        "no_json",
        "ok",
        "no_json",
    ]
    assert table.loc[0, "pred"] == pytest.approx([0.5, 0.3, 0.2]) and table.loc[1, "pred"] is None
    predict(items, CHAOSNLI, model, tok, out, backend="vllm", progress=False)  # all done: no engine is built
    assert len(calls["engines"]) == 1
    with pytest.raises(ValueError, match="backend='hf'"):
        predict(items, CHAOSNLI, model, tok, tmp_path / "c.jsonl", backend="vllm", constrained=True, progress=False)


def test_predict_records_statuses_and_resumes(tiny, chaos, tmp_path):
    model, tok = load_model(tiny, device="cpu")
    items = chaos[chaos["split"] == "test"].head(10)
    out = tmp_path / "preds.jsonl"
    first = predict(items.head(4), CHAOSNLI, model, tok, out, batch_size=4, max_new_tokens=8, progress=False)
    assert len(first) == 4
    lines_before = out.read_text().splitlines()
    full = predict(items, CHAOSNLI, model, tok, out, batch_size=4, max_new_tokens=8, progress=False)
    lines_after = out.read_text().splitlines()
    assert lines_after[:4] == lines_before  # finished ids untouched
    assert len(lines_after) == 10 and full["id"].tolist() == items["id"].tolist()
    assert set(full["status"]) <= {
        "ok",
        "renormalized",
        "no_json",
        "missing_keys",
        "invalid_values",
        "zero_sum",
        "duplicate_keys",
        "empty",
    }
    assert ((full["pred"].isna()) == ~full["status"].isin(["ok", "renormalized"])).all()
    # a partial last line (killed mid-write) is reported, skipped and recomputed
    with open(out, "a") as fh:
        fh.write('{"id": "broken')
    assert len(read_predictions(out)) == 10
    pred, gold, merged = attach_gold(full, items, 3)
    assert pred.shape == gold.shape == (10, 3) and np.isnan(pred).any(axis=1).sum() == (~full["pred"].notna()).sum()
    # another selection over the same file: only its own items come back (the file keeps everything)
    other = chaos[chaos["split"] == "test"].iloc[8:12]
    part = predict(other, CHAOSNLI, model, tok, out, batch_size=4, max_new_tokens=8, progress=False)
    assert part["id"].tolist() == other["id"].tolist() and len(read_predictions(out)) == 12
    assert part.iloc[:2].equals(full.iloc[8:].reset_index(drop=True))  # done ids reused, not recomputed
    lines = out.read_text().splitlines()  # the partial line was cut off before appending, not glued to
    assert len(lines) == 12 and [json.loads(x)["id"] for x in lines][10:] == other["id"].tolist()[2:]


def test_prefill_is_parsed_with_completion(tiny, chaos, tmp_path):
    model, tok = load_model(tiny, device="cpu")
    items = chaos[chaos["split"] == "test"].head(3)
    preds = predict(
        items,
        CHAOSNLI,
        model,
        tok,
        tmp_path / "p.jsonl",
        prefill=True,
        constrained=True,
        batch_size=3,
        max_new_tokens=80,
        progress=False,
    )
    assert (preds["prefill"] == '{"entailment": ').all()
    # constrained decoding only allows the JSON shape: every output parses
    assert preds["status"].isin(["ok", "renormalized"]).all(), preds[["raw_text", "status"]]


def test_config_yaml_round_trip_and_validation(tmp_path):
    cfg = ExperimentConfig(name="x", method="mls", grpo={**paper_grpo(), "max_steps": 3})
    cfg.to_yaml(tmp_path / "c.yaml")
    back = ExperimentConfig.from_yaml(tmp_path / "c.yaml")
    assert back == cfg
    assert back.with_overrides(["method=shala", "grpo.learning_rate=2e-5"]).grpo["learning_rate"] == 2e-5
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"methd": "shala"}))
    with pytest.raises(ValueError, match=r"bad.yaml: unknown config key\(s\) \['methd'\]"):
        ExperimentConfig.from_yaml(tmp_path / "bad.yaml")
    with pytest.raises(ValueError, match="method must be one of"):
        ExperimentConfig.from_dict({"method": "majority"})
    with pytest.raises(ValueError, match="evaluation only"):
        ExperimentConfig.from_dict({"grpo": {"generation_kwargs": {"do_sample": False}}})
    p = paper_grpo()
    assert (p["learning_rate"], p["num_generations"], p["temperature"], p["max_completion_length"], p["beta"]) == (
        1e-6,
        4,
        1.2,
        128,
        0.0,
    )


def _cfg(tiny, tmp_path, method, **over):
    data = dict(
        name=f"t_{method}",
        model=tiny,
        method=method,
        prefill=True,
        output_dir=str(tmp_path),
        max_train_items=16,
        max_eval_items=6,
        eval_batch_size=6,
        device="cpu",
        report_to=[],
        prompts_per_step=2,
        grpo={"max_completion_length": 12, "max_steps": 4, "save_steps": 2, "learning_rate": 1e-4, "logging_steps": 1},
    )
    data.update(over)
    return ExperimentConfig.from_dict(data)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["shala", "shala_no_ambi", "mls"])
def test_train_each_method_checkpoints_and_evaluates(tiny, tmp_path, method):
    from shala_lib.train import train

    cfg = _cfg(tiny, tmp_path, method)
    res = train(cfg)
    run = cfg.run_dir
    assert res["global_step"] == 4
    assert (run / "checkpoint-2").is_dir() and (run / "checkpoint-4").is_dir() and (run / "final").is_dir()
    eff = yaml.safe_load((run / "effective_config.yaml").read_text())
    assert eff["grpo_effective"]["scale_rewards"] == "group" and eff["grpo_effective"]["num_generations"] == 4
    assert eff["grpo_effective"]["generation_batch_size"] == 8  # 2 prompts x 4 rollouts per step
    assert eff["versions"]["trl"] == "1.16.0" and "loss_type" in eff["notes"]
    assert eff["notes"]["prompts_per_optimizer_step"] == 2 and eff["notes"]["completions_per_optimizer_step"] == 8
    metrics = pd.read_csv(run / "metrics.csv")
    assert f"rewards/{method}_reward/mean" in metrics.columns and metrics["step"].max() == 4
    comps = pd.read_parquet(run / "completions.parquet")
    assert len(comps) == 4 * 8 and set(comps["method"]) == {method}
    # the rewards TRL logged are what shala_lib.rewards gives on the same completions
    fn = make_reward_func(method, CHAOSNLI, prefill='{"entailment": ')
    table = load("chaosnli")
    targets = table.set_index("id").loc[comps["id"], "dist"].tolist()
    again = fn(prompts=[""] * len(comps), completions=comps["completion"].tolist(), target=targets)
    assert np.allclose(again, comps["reward"].to_numpy())
    # completions carry the optimizer steps completed when sampled; logs the step just finished
    per_step = comps.groupby("step")["reward"].mean()
    logged = metrics.set_index("step")["reward"].dropna()
    assert np.allclose(per_step.loc[logged.index - 1].to_numpy(), logged.to_numpy(), atol=1e-4)
    m = json.loads((run / "metrics_test.json").read_text())
    assert m["n"] == 6 and 0.0 <= m["jsd"] <= 1.0
    assert len(read_predictions(run / "predictions_test.jsonl")) == 6


@pytest.mark.slow
def test_resume_continues_at_the_right_step(tiny, tmp_path):
    from shala_lib.train import last_checkpoint, train

    cfg = _cfg(tiny, tmp_path, "shala", eval_split=None)
    cfg.grpo["max_steps"] = 2
    train(cfg)
    assert last_checkpoint(cfg.run_dir).name == "checkpoint-2"
    cfg.grpo["max_steps"] = 4
    res = train(cfg, resume=True)
    assert res["global_step"] == 4
    metrics = pd.read_csv(cfg.run_dir / "metrics.csv")  # both processes' rows: the curve is whole
    assert metrics.loc[metrics["loss"].notna(), "step"].tolist() == [1, 2, 3, 4]
    assert metrics.loc[metrics["train_runtime"].notna(), "step"].tolist() == [2, 4]  # one summary per process
    comps = pd.read_parquet(cfg.run_dir / "completions.parquet")
    assert sorted(comps["step"].unique().tolist()) == [0, 1, 2, 3]


def test_new_run_under_an_old_name_starts_clean(tiny, tmp_path):
    """Without --resume, nothing of an earlier run with the same name survives into the new one."""
    from shala_lib.train import train

    cfg = _cfg(tiny, tmp_path, "mls", max_eval_items=4, eval_batch_size=4)
    train(cfg)  # 4 steps: checkpoints 2 and 4, predictions of 4 test items
    cfg = cfg.with_overrides(["grpo.max_steps=2", "max_eval_items=3"])
    res = train(cfg)
    assert sorted(p.name for p in cfg.run_dir.glob("checkpoint-*")) == ["checkpoint-2"]
    metrics = pd.read_csv(cfg.run_dir / "metrics.csv")
    assert metrics.loc[metrics["loss"].notna(), "step"].tolist() == [1, 2]
    assert sorted(pd.read_parquet(cfg.run_dir / "completions.parquet")["step"].unique()) == [0, 1]
    lines = (cfg.run_dir / "predictions_test.jsonl").read_text().splitlines()
    assert len(lines) == 3 and res["metrics"]["n"] == 3  # the new model's own predictions only


@pytest.mark.slow
def test_nan_guard_stops_and_keeps_last_good_checkpoint(tiny, tmp_path):
    from shala_lib.train import NonFiniteTrainingError, train

    cfg = _cfg(tiny, tmp_path, "shala", eval_split=None)
    cfg.grpo["learning_rate"] = math.inf  # step 1 applies an infinite update -> non-finite loss later
    cfg.grpo["save_steps"] = 1
    with pytest.raises(NonFiniteTrainingError, match=r"at step \d+; training stopped. Last good checkpoint"):
        train(cfg)


def test_rewards_reach_trl_signature(tiny):
    fn = make_reward_func("shala", CHAOSNLI)
    out = fn(
        prompts=["p"],
        completions=['{"entailment": 0.5, "neutral": 0.5}'],
        completion_ids=[[1]],
        target=[[0.0, 0.5, 0.5]],
        trainer_state=None,
    )
    assert out == pytest.approx(shala_reward(np.array([[0.5, 0.5, 0]]), np.array([[0, 0.5, 0.5]])).tolist())


@pytest.mark.slow
def test_zero_std_warning_validation_jsd_and_lora(tiny, tmp_path):
    """The tiny random model almost never writes parsable JSON, so reward groups have zero variance:
    the warning fires. Validation JSD is logged every step; LoRA trains an adapter."""
    from shala_lib.train import train

    cfg = _cfg(
        tiny,
        tmp_path,
        "shala",
        eval_split="test",
        lora=True,
        lora_r=4,
        lora_alpha=8,
        val_every=1,
        val_items=4,
        zero_std_window=2,
        zero_std_warn=0.5,
        prefill=False,
    )
    with pytest.warns(UserWarning, match="frac_reward_zero_std averaged"):
        res = train(cfg)
    metrics = pd.read_csv(cfg.run_dir / "metrics.csv")
    val = metrics.dropna(subset=["val_jsd"])
    assert val["step"].tolist() == [1, 2, 3, 4]
    assert ((val["val_jsd"] >= 0) & (val["val_jsd"] <= 1)).all() and (val["val_parse_rate"] <= 1).all()
    assert (cfg.run_dir / "final" / "adapter_config.json").is_file()
    assert res["metrics"]["n"] == 6
