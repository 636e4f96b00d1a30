"""Inference and GRPO training on a tiny random Qwen2-style model built by code (seconds on CPU)."""

import json
import math
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from shala_lib.data.loading import load
from shala_lib.data.prompts import build_messages
from shala_lib.data.specs import CHAOSNLI
from shala_lib.generation.chat import format_prompt
from shala_lib.generation.inference import generate_hf, predict
from shala_lib.generation.models import load_model
from shala_lib.generation.predictions import attach_gold, read_predictions
from shala_lib.scoring.rewards import make_reward_func, shala_reward
from shala_lib.training.config import ExperimentConfig, paper_grpo


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

    from shala_lib.generation.inference import prompt_lengths, static_shape

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

    from shala_lib.generation.inference import resolve_cache, static_shape

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
        def __init__(self, model, dtype, generation_config):
            calls["engines"].append((model, dtype, generation_config))

        def generate(self, prompts, params, use_tqdm=False):
            calls["prompts"].append(len(prompts))
            texts = ['{"entailment": 0.5, "neutral": 0.3, "contradiction": 0.2}', "no idea"]
            return [
                SimpleNamespace(outputs=[SimpleNamespace(text=texts[i % 2], token_ids=list(range(7)))])
                for i in range(len(prompts))
            ]

    def sampling_params(max_tokens, **knobs):
        calls["params"].append((max_tokens, knobs))

    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(LLM=LLM, SamplingParams=sampling_params))
    model, tok = load_model(tiny, device="cpu")
    items = chaos[chaos["split"] == "test"].head(10)
    out = tmp_path / "vllm.jsonl"
    table = predict(items, CHAOSNLI, model, tok, out, backend="vllm", chunk_size=4, max_new_tokens=9, progress=False)
    # the model's generation_config.json gives no defaults; every penalty and filter is neutral
    assert calls["engines"] == [(tiny, "bfloat16", "vllm")]
    neutral = dict(
        temperature=0.0,
        top_p=1.0,
        top_k=-1,
        min_p=0.0,
        repetition_penalty=1.0,
        presence_penalty=0.0,
        frequency_penalty=0.0,
    )
    assert calls["params"] == [(9, neutral)] * 3 and calls["prompts"] == [4, 4, 2]
    assert json.loads(out.with_name("vllm.meta.json").read_text())["fingerprint"]["decoding"] == neutral
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
    predict(items, CHAOSNLI, model, tok, out, backend="vllm", max_new_tokens=9, progress=False)  # all done: no engine
    assert len(calls["engines"]) == 1
    with pytest.raises(ValueError, match="backend='hf'"):
        predict(items, CHAOSNLI, model, tok, tmp_path / "c.jsonl", backend="vllm", constrained=True, progress=False)


def test_greedy_evaluation_ignores_the_models_sampling_and_penalty_defaults(tiny_varied, chaos, tmp_path):
    """A model's generation_config can carry repetition_penalty, top_k, no_repeat_ngram_size...
    (Qwen2.5-Instruct ships repetition_penalty 1.05); transformers applies them to every value a
    call leaves unset. Evaluation must be greedy regardless, and say what it overrode."""
    import torch

    model, tok = load_model(tiny_varied, device="cpu")
    items = chaos[chaos["split"] == "test"].head(6)
    kw = dict(batch_size=6, max_new_tokens=16, progress=False)
    clean = predict(items, CHAOSNLI, model, tok, tmp_path / "clean.jsonl", **kw)
    model.generation_config.repetition_penalty = 3.0
    model.generation_config.no_repeat_ngram_size = 2
    model.generation_config.top_k = 3
    # the knobs really change plain greedy generate (so the comparison below can fail)
    prompts = [format_prompt(tok, build_messages(CHAOSNLI, r)) for _, r in items.iterrows()]
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.inference_mode():
        leaked = model.generate(**enc, max_new_tokens=16, do_sample=False, pad_token_id=tok.pad_token_id)
    leaked_text = [tok.decode(r[enc["input_ids"].shape[1] :], skip_special_tokens=True) for r in leaked]
    assert leaked_text != clean["raw_text"].tolist()
    knobs = predict(items, CHAOSNLI, model, tok, tmp_path / "knobs.jsonl", **kw)
    assert knobs["raw_text"].tolist() == clean["raw_text"].tolist()
    assert model.generation_config.repetition_penalty == 3.0  # the model's own config is restored
    meta = json.loads((tmp_path / "knobs.meta.json").read_text())
    assert meta["model_defaults_overridden"] == {"repetition_penalty": 3.0, "no_repeat_ngram_size": 2, "top_k": 3}
    d = meta["fingerprint"]["decoding"]
    assert (d["do_sample"], d["num_beams"], d["repetition_penalty"], d["no_repeat_ngram_size"]) == (False, 1, 1.0, 0)


def test_changed_model_or_setting_never_resumes_an_old_predictions_file(tiny, tiny_varied, chaos, tmp_path):
    """Zero-shot files are named by dataset, split and option only: a rerun with another MODEL (or
    prompt variant, prefill, max tokens) must predict afresh, keeping the old file aside."""
    from shala_lib.evaluation.zero_shot import predictions_path, run_zero_shot

    table = chaos
    kw = dict(options=("prefill",), limit=4, batch_size=4, max_new_tokens=10, progress=False)
    path = predictions_path(tmp_path, "chaosnli", "test", "prefill")
    a, ta = load_model(tiny, device="cpu")
    run_zero_shot(table, "chaosnli", tmp_path, model_name="A", model=a, tokenizer=ta, **kw)
    first = read_predictions(path)
    again = path.read_bytes()
    run_zero_shot(table, "chaosnli", tmp_path, model_name="A", model=a, tokenizer=ta, **kw)
    assert path.read_bytes() == again  # same model and settings: resumed, nothing recomputed
    b, tb = load_model(tiny_varied, device="cpu")
    with pytest.warns(UserWarning, match=r"not resumed.*model: 'A' -> 'B'.*model_path.*weights"):
        run_zero_shot(table, "chaosnli", tmp_path, model_name="B", model=b, tokenizer=tb, **kw)
    second = read_predictions(path)
    fresh = predict(
        first_ids := chaos.set_index("id").loc[first["id"]].reset_index(),
        CHAOSNLI,
        b,
        tb,
        tmp_path / "b_alone.jsonl",
        prefill=True,
        batch_size=4,
        max_new_tokens=10,
        progress=False,
    )
    assert second["raw_text"].tolist() == fresh["raw_text"].tolist() != first["raw_text"].tolist()
    assert (second["model"] == "B").all() and len(first_ids) == 4
    aside = path.with_name(path.stem + ".stale-1.jsonl")
    assert read_predictions(aside)["raw_text"].tolist() == first["raw_text"].tolist()
    assert json.loads(path.with_name(path.stem + ".stale-1.meta.json").read_text())["fingerprint"]["model"] == "A"
    # the same weights under another setting (max new tokens) are not resumed either
    with pytest.warns(UserWarning, match=r"max_new_tokens: 10 -> 12"):
        run_zero_shot(
            table, "chaosnli", tmp_path, model_name="B", model=b, tokenizer=tb, **{**kw, "max_new_tokens": 12}
        )
    assert path.with_name(path.stem + ".stale-2.jsonl").is_file()
    # a file from before fingerprints (no sidecar) is not trusted
    legacy = tmp_path / "legacy.jsonl"
    legacy.write_text(path.read_text())
    with pytest.warns(UserWarning, match="no fingerprint"):
        predict(first_ids, CHAOSNLI, b, tb, legacy, prefill=True, batch_size=4, max_new_tokens=12, progress=False)


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
        "unknown_keys",
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
    from shala_lib.training.run import train

    cfg = _cfg(tiny, tmp_path, method)
    res = train(cfg)
    run = cfg.run_dir
    assert res["global_step"] == 4
    assert (run / "checkpoint-2").is_dir() and (run / "checkpoint-4").is_dir() and (run / "final").is_dir()
    eff = yaml.safe_load((run / "effective_config.yaml").read_text())
    assert eff["grpo_effective"]["scale_rewards"] == "group" and eff["grpo_effective"]["num_generations"] == 4
    assert eff["grpo_effective"]["loss_type"] == "grpo" and eff["grpo_effective"]["use_vllm"] is False
    assert eff["grpo_effective"]["generation_batch_size"] == 8  # 2 prompts x 4 rollouts per step
    assert eff["versions"]["trl"] == "1.16.0" and "loss_type" in eff["notes"] and len(eff["git"]["commit"]) == 40
    assert eff["notes"]["prompts_per_optimizer_step"] == 2 and eff["notes"]["completions_per_optimizer_step"] == 8
    metrics = pd.read_csv(run / "metrics.csv")
    assert f"rewards/{method}_reward/mean" in metrics.columns and metrics["step"].max() == 4
    comps = pd.read_parquet(run / "completions.parquet")
    assert len(comps) == 4 * 8 and set(comps["method"]) == {method} and set(comps["rank"]) == {0}
    assert comps.groupby(["step", "id"]).size().eq(4).all()  # each prompt's 4 rollouts, once
    # the rewards TRL logged are what shala_lib.scoring.rewards gives on the same completions
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
    from shala_lib.training.run import train
    from shala_lib.training.run_dir import last_checkpoint

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


def test_new_run_under_an_old_name_refuses_or_sets_the_old_one_aside(tiny, tmp_path):
    """Without --resume a new run never mixes with (nor deletes) an earlier one of the same name: it
    refuses to start, or with overwrite moves the earlier run aside whole and starts clean."""
    from shala_lib.training.run import train
    from shala_lib.training.run_dir import RunExistsError

    cfg = _cfg(tiny, tmp_path, "mls", max_eval_items=4, eval_batch_size=4)
    train(cfg)  # 4 steps: checkpoints 2 and 4, predictions of 4 test items
    earlier = {p.relative_to(cfg.run_dir): p.read_bytes() for p in cfg.run_dir.rglob("*") if p.is_file()}
    cfg = cfg.with_overrides(["grpo.max_steps=2", "max_eval_items=3"])
    with pytest.raises(RunExistsError, match=r"t_mls: an earlier run is there .*--resume.*--overwrite.*name"):
        train(cfg)
    res = train(cfg, overwrite=True)
    aside = tmp_path / "t_mls.previous-1"
    assert {p.relative_to(aside): p.read_bytes() for p in aside.rglob("*") if p.is_file()} == earlier
    assert sorted(p.name for p in aside.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert sorted(p.name for p in cfg.run_dir.glob("checkpoint-*")) == ["checkpoint-2"]
    metrics = pd.read_csv(cfg.run_dir / "metrics.csv")
    assert metrics.loc[metrics["loss"].notna(), "step"].tolist() == [1, 2]
    assert sorted(pd.read_parquet(cfg.run_dir / "completions.parquet")["step"].unique()) == [0, 1]
    lines = (cfg.run_dir / "predictions_test.jsonl").read_text().splitlines()
    assert len(lines) == 3 and res["metrics"]["n"] == 3  # the new model's own predictions only


@pytest.mark.slow
def test_nan_guard_stops_and_keeps_last_good_checkpoint(tiny, tmp_path):
    from shala_lib.training.callbacks import NonFiniteTrainingError
    from shala_lib.training.run import train

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
    from shala_lib.training.run import train

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


def test_paper_profile_effective_config_is_the_papers(tmp_path):
    """configs/shala_paper.yaml as TRL receives it (no model needed): the paper's loss type, epochs,
    rollouts, ... each with its source, nothing silently different; the README's decisions table
    names every one of them."""
    from pathlib import Path

    from shala_lib.training.config import PAPER_SOURCES
    from shala_lib.training.grpo_args import grpo_config
    from shala_lib.training.run_dir import write_effective_config

    cfg = ExperimentConfig.from_yaml("configs/shala_paper.yaml").with_overrides([f"output_dir={tmp_path}"])
    cfg.run_dir.mkdir(parents=True)
    eff = yaml.safe_load(write_effective_config(cfg, grpo_config(cfg, on_cpu=True)).read_text())
    n = eff["notes"]
    assert (n["loss_type"], n["importance_sampling_level"], n["epsilon"], n["num_train_epochs"]) == (
        "grpo",
        "token",
        0.2,
        3,
    )
    assert n["mask_truncated_completions"] is False and n["use_vllm"] is False and n["scale_rewards"] == "group"
    assert n["prompts_per_optimizer_step"] == 4 and n["completions_per_optimizer_step"] == 16
    assert n["keep_checkpoints"] == 2
    settings = eff["paper_settings"]
    assert set(settings) == {*PAPER_SOURCES, "prompts_per_step"}
    assert all("source" in v and "paper" not in v for v in settings.values()), settings
    assert settings["loss_type"]["source"].startswith("paper eq. 7/11")
    # a config that departs from the paper says so, with the paper's value
    small = ExperimentConfig.from_yaml("configs/chaosnli_smollm2.yaml").with_overrides([f"output_dir={tmp_path}"])
    small.run_dir.mkdir(parents=True)
    eff = yaml.safe_load(write_effective_config(small, grpo_config(small, on_cpu=True)).read_text())
    assert eff["paper_settings"]["learning_rate"] == {"value": 1e-5, "paper": 1e-6}
    assert eff["paper_settings"]["loss_type"]["value"] == "grpo"  # inherited from paper_grpo(), not TRL's dapo
    readme = Path("README.md").read_text()
    decisions = readme[readme.index("## Decisions") :]
    for key in (*PAPER_SOURCES, "prompts_per_step"):
        assert f"`{key}`" in decisions, key


def test_vllm_rollouts_only_when_asked(monkeypatch, tmp_path):
    import importlib.util

    from shala_lib.training.grpo_args import grpo_config

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else real(name, *a))
    cfg = ExperimentConfig.from_dict({"output_dir": str(tmp_path), "grpo": {"bf16": False}})  # the GPU path, here
    assert grpo_config(cfg, on_cpu=False).use_vllm is False  # installed, but not asked for
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a))
    with pytest.raises(ValueError, match="use_vllm is true but vllm is not installed"):
        grpo_config(cfg.with_overrides(["grpo.use_vllm=true"]), on_cpu=False)


def test_checkpoint_retention_keeps_the_last_n_and_the_best_validated():
    from shala_lib.training.callbacks import checkpoints_to_remove

    steps = [100, 200, 300, 400, 500]
    assert checkpoints_to_remove(steps, 2, {}) == [100, 200, 300]
    assert checkpoints_to_remove(steps, 2, {100: 0.40, 200: 0.31, 300: 0.35, 400: 0.33, 500: 0.38}) == [100, 300]
    assert checkpoints_to_remove(steps, 2, {200: 0.30, 300: 0.30}) == [100, 300]  # ties: the earlier
    assert checkpoints_to_remove(steps, 2, {500: 0.2}) == [100, 200, 300]  # the best is among the last
    assert checkpoints_to_remove(steps, 2, {200: float("nan")}) == [100, 200, 300]
    assert checkpoints_to_remove(steps, None, {}) == []
    with pytest.raises(ValueError, match="keep_checkpoints must be >= 1"):
        ExperimentConfig.from_dict({"keep_checkpoints": 0})
    with pytest.raises(ValueError, match="instead of grpo.save_total_limit"):
        ExperimentConfig.from_dict({"grpo": {"save_total_limit": 3}})


def test_weights_guard_checks_zero3_partitions():
    """Under ZeRO-3 each parameter is an empty placeholder and the process's share of it lives in
    `ds_tensor`: checking `p` itself would check nothing."""
    import torch

    from shala_lib.training.callbacks import nonfinite_weights

    class Partitioned(torch.nn.Module):
        def __init__(self, share: torch.Tensor) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.empty(0))  # what a ZeRO-3 parameter looks like
            self.w.ds_tensor = share

    assert nonfinite_weights(Partitioned(torch.tensor([1.0, float("nan")]))) is True
    assert nonfinite_weights(Partitioned(torch.tensor([1.0, 2.0]))) is False
    plain = torch.nn.Linear(2, 2)
    assert nonfinite_weights(plain) is False
    with torch.no_grad():
        plain.weight[0, 0] = float("inf")
    assert nonfinite_weights(plain) is True


def test_final_evaluation_runs_with_zero3_switched_off(monkeypatch):
    """With transformers' ZeRO-3 switch on, `from_pretrained` runs under deepspeed.zero.Init and
    waits for the other processes: the final evaluation (main process only) would hang."""
    import weakref
    from types import SimpleNamespace

    import transformers.integrations.deepspeed as hf_ds

    from shala_lib.training.distributed import leave_distributed_training

    class Zero3:  # stands in for HfDeepSpeedConfig (deepspeed is not installed here)
        def is_zero3(self) -> bool:
            return True

    switch = Zero3()
    monkeypatch.setattr(hf_ds, "_hf_deepspeed_config_weak_ref", weakref.ref(switch))
    assert hf_ds.is_deepspeed_zero3_enabled()
    freed = []
    leave_distributed_training(SimpleNamespace(accelerator=SimpleNamespace(free_memory=lambda: freed.append(1))))
    assert not hf_ds.is_deepspeed_zero3_enabled() and freed == [1]


@pytest.mark.slow
def test_structured_rollouts_are_all_json_and_top_layers_train_alone(tiny, tmp_path):
    """Structured rollouts: every sampled completion of the (random, tiny) model is the JSON shape,
    where free sampling gives almost none. `train_top_layers=1`: only the last decoder layer and
    the final norm change."""
    import torch
    from transformers import AutoModelForCausalLM

    from shala_lib.generation.parsing import USABLE
    from shala_lib.training.run import train

    free = _cfg(tiny, tmp_path, "shala_no_ambi", name="free", eval_split=None)
    free.grpo["max_steps"] = 2
    train(free)
    free_ok = pd.read_parquet(free.run_dir / "completions.parquet")["status"].isin(USABLE).mean()
    cfg = _cfg(
        tiny,
        tmp_path,
        "shala_no_ambi",
        name="structured",
        structured_rollouts=True,
        constrained_eval=True,
        train_top_layers=1,
        max_eval_items=4,
        eval_batch_size=4,
    )
    cfg.grpo.update(max_steps=2, max_completion_length=40)
    res = train(cfg)
    comps = pd.read_parquet(cfg.run_dir / "completions.parquet")
    assert len(comps) == 16 and comps["status"].isin(USABLE).all() and free_ok < 0.5
    assert comps["completion"].str.endswith("}").all()
    assert res["metrics"]["parse_rate"] == 1.0 and res["metrics"]["n_distinct"] >= 1
    before = AutoModelForCausalLM.from_pretrained(tiny).state_dict()
    after = AutoModelForCausalLM.from_pretrained(str(cfg.run_dir / "final")).state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("model.layers.1.", "model.norm.")) for k in changed), changed
    with pytest.raises(ValueError, match="train_top_layers must be"):
        ExperimentConfig.from_dict({"train_top_layers": 0})
