"""Speech + text with Qwen2.5-Omni's thinker: audio reading, the processor, MSP-Podcast's label forms,
inference and GRPO that really hear the clip (tiny random thinker, generated clips, CPU, offline)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from shala_lib.data.audio import AudioReadError, ClipReport, feature_window, read_audio, survey_clips
from shala_lib.data.canonical import DataFormatError
from shala_lib.data.loading import load
from shala_lib.data.prompts import build_messages
from shala_lib.data.specs import get_spec
from shala_lib.data.speech_fixture import synth_speech, write_clip, write_msp_fixture
from shala_lib.generation.chat import format_prompt
from shala_lib.generation.inference import predict
from shala_lib.generation.models import load_model, load_tokenizer
from shala_lib.generation.omni import (
    OMNI_SYSTEM_PROMPT,
    audio_token_count,
    encode,
    load_processor,
    load_thinker,
    model_family,
    placeholder_token_ids,
)
from shala_lib.generation.predictions import read_predictions, sidecar_path
from shala_lib.training.config import ExperimentConfig
from shala_lib.training.inputs import build_dataset, model_setup

MSP = get_spec("msp_podcast")


# --- audio files -------------------------------------------------------------------------------
def _dominant_hz(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spec.argmax()])


@pytest.mark.parametrize(("rate", "channels"), [(44_100, 2), (8_000, 1), (16_000, 1), (22_050, 2)])
def test_read_audio_mixes_to_mono_and_resamples(tmp_path, rate, channels):
    t = np.arange(rate) / rate  # one second of 440 Hz
    path = write_clip(tmp_path / "a.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate, channels)
    x = read_audio(path)
    assert x.ndim == 1 and x.dtype == np.float32
    assert abs(len(x) - 16_000) <= 1  # one second at 16 kHz whatever the file's rate
    assert _dominant_hz(x, 16_000) == pytest.approx(440, abs=1.5)
    assert np.abs(x).max() == pytest.approx(0.5, abs=0.02)  # channels averaged, not summed


def test_read_audio_errors_name_the_file(tmp_path):
    with pytest.raises(AudioReadError, match="nope.wav: audio file not found"):
        read_audio(tmp_path / "nope.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wav")
    with pytest.raises(AudioReadError, match="bad.wav: cannot decode"):
        read_audio(bad)


def test_clips_beyond_the_window_are_counted(msp_speech):
    clips = sorted(str(p) for p in (msp_speech / "msp_podcast" / "Audios").glob("*.wav"))
    secs, report = survey_clips(clips, window_s=30.0)  # Whisper's 30 s window; the fixture has one 31 s clip
    assert report.n_clips == 40 and report.n_long == 1 and secs.max() == pytest.approx(31.0, abs=1e-3)
    assert "1 of 40 clip(s) are longer than the 30 s feature window" in report.message()
    assert "MSP-PODCAST_0000_0001.wav (31.0 s)" in report.message()
    assert ClipReport(window_s=30.0).message() is None
    assert survey_clips(clips, window_s=300.0)[1].n_long == 0  # Qwen2.5-Omni-7B's window holds it


def test_the_window_comes_from_the_feature_extractor_config(tiny_thinker):
    from transformers import WhisperFeatureExtractor

    omni = feature_window(load_processor(tiny_thinker)[0])  # the tiny thinker has Qwen2.5-Omni-7B's config
    assert (omni.seconds, omni.max_frames, omni.hop_length) == (300.0, 30_000, 160)
    whisper = feature_window(WhisperFeatureExtractor(feature_size=80, chunk_length=30))
    assert (whisper.seconds, whisper.max_frames) == (30.0, 3000)
    assert omni.frames(31.0) == 3100 and whisper.frames(31.0) == 3000 and omni.frames(0.01) == 1


# --- MSP-Podcast as released ---------------------------------------------------------------------
def test_msp_both_label_forms_give_the_same_distributions(tmp_path):
    a = write_msp_fixture(tmp_path / "a", n_items=24, form="detail").parent
    b = write_msp_fixture(tmp_path / "b", n_items=24, form="columns").parent
    ta, tb = load("msp_podcast", data_dir=a, seed=1), load("msp_podcast", data_dir=b, seed=1)
    # the v1.12 detail strings (some without the secondary field) and the per-column form with words
    # and one-letter codes are the same ratings
    assert "; Angry; A:4" in (a / "msp_podcast" / "Labels" / "labels_detailed.csv").read_text()
    assert ",A,N," in (b / "msp_podcast" / "Labels" / "labels_detailed.csv").read_text()
    pd.testing.assert_frame_equal(ta.drop(columns="audio_path"), tb.drop(columns="audio_path"))
    assert len(ta) == 24 and ta["audio_path"].map(lambda p: Path(p).is_file()).all()
    first = ta.set_index("id").loc["MSP-PODCAST_0000_0001.wav"]
    assert first["majority"] == "angry" and first["n_annotators"] >= 2


def test_msp_unknown_header_is_a_clear_error(tmp_path):
    folder = tmp_path / "msp_podcast" / "Labels"
    folder.mkdir(parents=True)
    (folder / "labels_detailed.csv").write_text("FileName,Emotion\nx.wav,Happy\n")
    with pytest.raises(DataFormatError, match=r"labels_detailed.csv, line 1: unrecognised .*\['FileName', 'Emotion'\]"):
        load("msp_podcast", data_dir=tmp_path)


def test_msp_per_column_form_reports_line_of_empty_primary(tmp_path):
    folder = tmp_path / "msp_podcast" / "Labels"
    folder.mkdir(parents=True)
    (folder / "labels_detailed.csv").write_text("FileName,Worker,EmoClass_Major\nx.wav,W1,Happy\nx.wav,W2,\n")
    with pytest.raises(DataFormatError, match="line 3, field 'EmoClass_Major': empty primary emotion"):
        load("msp_podcast", data_dir=tmp_path)


def test_require_audio_skips_and_counts_items_without_clips(tmp_path):
    root = write_msp_fixture(tmp_path, n_items=8).parent
    (root / "msp_podcast" / "Audios" / "MSP-PODCAST_0003_0001.wav").unlink()
    df = load("msp_podcast", data_dir=root, require_audio=True)
    assert len(df) == 7 and df.attrs["skipped"] == {"item without its clip under Audios/": 1}


# --- model family, processor, prompts ----------------------------------------------------------
def test_model_family_and_thinker_loading(tiny_thinker, tiny):
    assert model_family(tiny_thinker) == "omni" and model_family(tiny) == "causal_lm"
    model, tok = load_model(tiny_thinker, device="cpu")
    assert type(model).__name__ == "Qwen2_5OmniThinkerForConditionalGeneration"
    assert not any(p.requires_grad for p in model.model.visual.parameters())  # vision tower frozen
    assert all(p.requires_grad for p in model.model.audio_tower.parameters())
    ids = placeholder_token_ids(model)
    assert ids == sorted(tok.convert_tokens_to_ids(t) for t in ("<|AUDIO|>", "<|IMAGE|>", "<|VIDEO|>"))


def _copy_with_keys(src: str, dst: Path, rename) -> Path:
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    state = load_file(str(Path(src) / "model.safetensors"))
    save_file({rename(k): v for k, v in state.items()}, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return dst


def test_thinker_from_a_full_omni_layout_loads_every_tensor(tiny_thinker, tmp_path):
    """A full Omni checkpoint's key layout ('thinker.' prefix) gives the same tensors, every one of them."""
    full = _copy_with_keys(tiny_thinker, tmp_path / "full", lambda k: "thinker." + k)
    want = load_thinker(tiny_thinker, dtype=torch.float32).state_dict()
    got = load_thinker(str(full), dtype=torch.float32).state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)


def test_thinker_with_an_unknown_key_layout_is_refused(tiny_thinker, tmp_path):
    """transformers would load it with 24 of 73 tensors random and one log line; we refuse, naming them."""
    from shala_lib.generation.omni import CheckpointMismatchError

    odd = _copy_with_keys(tiny_thinker, tmp_path / "odd", lambda k: k.replace("model.layers.", "model.blocks."))
    with pytest.raises(CheckpointMismatchError) as e:
        load_thinker(str(odd), dtype=torch.float32)
    msg = str(e.value)
    assert str(odd) in msg and "24 missing keys (model.language_model.layers.0.input_layernorm.weight" in msg
    assert "24 unexpected keys (model.language_model.blocks.0.input_layernorm.weight" in msg
    with pytest.raises(CheckpointMismatchError):
        load_model(str(odd), device="cpu")  # the path every caller takes


def test_processor_path_and_audio_token_count(tiny_thinker, msp_speech):
    from transformers import WhisperFeatureExtractor

    proc, kind = load_processor(tiny_thinker)
    # transformers 5.23's Qwen2_5OmniProcessor needs torchvision; where it is missing, the composed path runs
    assert kind == ("AutoProcessor" if importlib.util.find_spec("torchvision") else "composed")
    audios = msp_speech / "msp_podcast" / "Audios"
    paths = [audios / f"MSP-PODCAST_{i:04d}_0001.wav" for i in (0, 1, 5)]
    clips = [read_audio(p) for p in paths]
    item = {"text": "hello there", "audio_path": str(paths[0])}
    text = format_prompt(proc, build_messages(MSP, item, modality="speech+text", system=OMNI_SYSTEM_PROMPT))
    assert text.count("<|audio_bos|><|AUDIO|><|audio_eos|>") == 1 and text.count(OMNI_SYSTEM_PROMPT) == 1
    assert "hello there" in text and text.endswith("<|im_start|>assistant\n")
    enc = encode(proc, [text] * 3, clips)
    assert set(enc) == {"input_ids", "attention_mask", "input_features", "feature_attention_mask"}
    frames = enc["feature_attention_mask"].sum(-1).tolist()
    assert frames == [-(-len(c) // 160) for c in clips]  # 10 ms hop; the 31 s clip is inside the 300 s window
    # padded to the longest clip (+1 hop), not to the window's 30,000 frames
    assert tuple(enc["input_features"].shape) == (3, 128, max(frames) + 1) and frames[0] == 3100
    n_audio = (enc["input_ids"] == proc.tokenizer.convert_tokens_to_ids("<|AUDIO|>")).sum(-1).tolist()
    assert n_audio == [int(audio_token_count(f)) for f in frames] and n_audio[0] == 775
    # the frames the encoder reads are the model's own Whisper extractor's, padded to its full window
    fe = WhisperFeatureExtractor.from_pretrained(tiny_thinker)
    for i, clip in enumerate(clips):
        ref = fe(clip, sampling_rate=16_000, padding="max_length", return_tensors="pt")["input_features"]
        assert ref.shape[-1] == 30_000
        assert torch.equal(enc["input_features"][i, :, : frames[i]], ref[0, :, : frames[i]])


def test_longest_padding_leaves_the_model_outputs_unchanged(tiny_thinker, msp_speech):
    """Window-padded (30,000 frames) and longest-padded features give the same logits."""
    model, _ = load_model(tiny_thinker, device="cpu")
    proc, _ = load_processor(tiny_thinker)
    audios = msp_speech / "msp_podcast" / "Audios"
    clips = [read_audio(audios / f"MSP-PODCAST_{i:04d}_0001.wav") for i in (1, 5)]
    item = {"text": "same words", "audio_path": "unused"}
    text = format_prompt(proc, build_messages(MSP, item, modality="speech+text", system=OMNI_SYSTEM_PROMPT))
    short = encode(proc, [text] * 2, clips)
    fe = proc.feature_extractor
    full = fe(clips, sampling_rate=16_000, padding="max_length", return_attention_mask=True, return_tensors="pt")
    assert full["input_features"].shape[-1] == 30_000 > short["input_features"].shape[-1]
    assert torch.equal(full["attention_mask"].sum(-1), short["feature_attention_mask"].sum(-1))
    with torch.no_grad():
        a = model(**short).logits
        b = model(
            input_ids=short["input_ids"],
            attention_mask=short["attention_mask"],
            input_features=full["input_features"],
            feature_attention_mask=full["attention_mask"],
        ).logits
    assert torch.allclose(a, b, atol=1e-5, rtol=0)


def test_clips_beyond_the_window_are_cut_to_it(tiny_thinker):
    from shala_lib.generation.omni import ComposedOmniProcessor

    proc, _ = load_processor(tiny_thinker)
    fe = type(proc.feature_extractor)(feature_size=128, chunk_length=1)  # a 1 s window, 100 frames
    small = ComposedOmniProcessor(fe, proc.tokenizer, "")
    clip = synth_speech(1.5, 16_000, 200.0, 0.3)
    feats = small.features([clip, clip[:8000]])
    assert feats["attention_mask"].sum(-1).tolist() == [100, 50] and feats["input_features"].shape[-1] == 100


def test_speech_prompts_per_modality():
    item = {"id": "x", "text": "I saw it", "audio_path": "/clips/x.wav"}
    both = build_messages(MSP, item, modality="speech+text", system="S")
    speech = build_messages(MSP, item, modality="speech")
    text = build_messages(MSP, item, modality="text")
    assert both[0] == {"role": "system", "content": "S"}
    assert both[1]["content"][0] == {"type": "audio", "audio": "/clips/x.wav"}
    assert "I saw it" in both[1]["content"][1]["text"] and "I saw it" not in speech[0]["content"][1]["text"]
    assert isinstance(text[0]["content"], str) and "I saw it" in text[0]["content"]
    with pytest.raises(KeyError, match="has no audio_path"):
        build_messages(MSP, {"id": "y", "text": "t"}, modality="speech")


# --- inference -----------------------------------------------------------------------------------
def test_different_audio_changes_the_logits(tiny_thinker, msp_speech):
    model, tok = load_model(tiny_thinker, device="cpu")
    proc, _ = load_processor(tiny_thinker)
    audios = msp_speech / "msp_podcast" / "Audios"
    item = {"text": "same words", "audio_path": "unused"}
    text = format_prompt(proc, build_messages(MSP, item, modality="speech+text", system=OMNI_SYSTEM_PROMPT))
    happy = read_audio(audios / "MSP-PODCAST_0004_0001.wav")  # high and loud
    a = encode(proc, [text], [happy])
    b = encode(proc, [text], [synth_speech(len(happy) / 16_000, 16_000, 110.0, 0.25)])  # low and soft
    assert a["input_ids"].shape == b["input_ids"].shape  # same length, only the sound differs
    with torch.no_grad():
        la, lb = model(**a).logits[0, -1], model(**b).logits[0, -1]
        no_audio = model(input_ids=a["input_ids"], attention_mask=a["attention_mask"]).logits[0, -1]
    assert (la - lb).abs().max() > 1e-3
    assert (la - no_audio).abs().max() > 1e-3


def test_predict_speech_text_resumes_and_records(tiny_thinker, msp_speech, tmp_path):
    model, tok = load_model(tiny_thinker, device="cpu")
    table = load("msp_podcast", data_dir=msp_speech)
    items = table[table["split"] == "test"].head(5)
    seen = []
    plain = model.generate

    def spy(*a, **kw):
        seen.append(kw)
        out = plain(*a, **kw)
        new = out[:, kw["input_ids"].shape[1] :]
        assert not torch.isin(new, torch.tensor(placeholder_token_ids(model))).any()
        return out

    model.generate = spy
    out_path = tmp_path / "p.jsonl"
    preds = predict(items, MSP, model, tok, out_path, max_new_tokens=6, batch_size=2, progress=False)
    assert len(preds) == 5 and len(seen) == 3  # batches of 2, 2, 1
    assert all(k["suppress_tokens"] == placeholder_token_ids(model) for k in seen)
    # each batch's features are padded to its longest clip (+1 hop), far below the 30,000-frame window
    assert all(k["input_features"].shape[-1] == k["feature_attention_mask"].sum(-1).max() + 1 for k in seen)
    assert all(k["input_features"].shape[-1] < 30_000 for k in seen)
    # length-sorted: the longest prompt (text + audio tokens) goes first
    assert seen[0]["input_ids"].shape[1] >= seen[-1]["input_ids"].shape[1]
    meta = json.loads(sidecar_path(out_path).read_text())
    assert meta["fingerprint"]["modality"] == "speech+text" and meta["cache"] == "dynamic"
    assert meta["processor"] in ("composed", "AutoProcessor") and meta["system_prompt"] == OMNI_SYSTEM_PROMPT
    assert meta["clips"]["n_clips"] == 5
    seen.clear()
    again = predict(items, MSP, model, tok, out_path, max_new_tokens=6, batch_size=2, progress=False)
    assert seen == [] and again["raw_text"].tolist() == preds["raw_text"].tolist()  # resumed, nothing recomputed
    # another modality is another experiment: the file is set aside, not resumed
    with pytest.warns(UserWarning, match="modality: 'speech\\+text' -> 'speech'"):
        predict(items, MSP, model, tok, out_path, max_new_tokens=6, batch_size=2, progress=False, modality="speech")
    assert len(read_predictions(out_path)) == 5 and (tmp_path / "p.stale-1.jsonl").is_file()


def test_speech_needs_a_model_that_hears(tiny, msp_speech, tmp_path):
    model, tok = load_model(tiny, device="cpu")
    items = load("msp_podcast", data_dir=msp_speech).head(2)
    with pytest.raises(ValueError, match="needs a model that hears .* pass modality='text'"):
        predict(items, MSP, model, tok, tmp_path / "p.jsonl", progress=False)
    cfg = ExperimentConfig(name="m", dataset="msp_podcast", model=tiny)
    with pytest.raises(ValueError, match="modality 'speech\\+text' \\(the dataset default\\) needs a model that hears"):
        model_setup(cfg, MSP, tiny, tok)


# --- GRPO with audio -----------------------------------------------------------------------------
def _length_reward(prompts, completions, **kwargs):
    return [float(len(c) % 7) for c in completions]


def _speech_trainer(tiny_thinker, msp_speech, tmp_path, n_prompts=2, g=2, max_steps=1):
    from trl import GRPOConfig

    from shala_lib.training.speech_trainer import SpeechGRPOTrainer

    table = load("msp_podcast", data_dir=msp_speech)
    cfg = ExperimentConfig(name="s", dataset="msp_podcast", model=tiny_thinker)
    tok = load_tokenizer(tiny_thinker)
    setup = model_setup(cfg, MSP, tiny_thinker, tok)
    ds = build_dataset(table, MSP, "train", cfg, setup.renderer, 4 * n_prompts, setup.modality, setup.system)
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=n_prompts * g,
        num_generations=g,
        max_completion_length=6,
        max_steps=max_steps,
        use_cpu=True,
        bf16=False,  # fp32 throughout: the comparisons below are exact to 1e-5
        report_to=[],
        temperature=1.0,
        learning_rate=1e-2,
        loss_type="grpo",
        beta=0.0,
        seed=0,
        logging_steps=1,
        save_strategy="no",
    )
    torch.manual_seed(0)
    model = load_thinker(tiny_thinker, dtype=torch.float32)
    trainer = SpeechGRPOTrainer(
        model=model,
        reward_funcs=[_length_reward],
        args=args,
        train_dataset=ds,
        processing_class=tok,
        audio_processor=setup.processor,
    )
    return trainer, ds, setup


def _manual_logps(model, ids, mask, feats, fmask, keep, temperature=1.0):
    with torch.no_grad():
        logits = model(
            input_ids=ids[None],
            attention_mask=mask[None],
            input_features=feats[None],
            feature_attention_mask=fmask[None],
        ).logits[0]
    logps = torch.log_softmax(logits[:-1] / temperature, dim=-1)
    return logps.gather(1, ids[1:, None])[:, 0][-keep:]


def test_trainer_scores_each_completion_with_its_own_clip(tiny_thinker, msp_speech, tmp_path):
    from trl import GRPOTrainer
    from trl.trainer.utils import shuffle_sequence_dict

    # every clip 1.5 s long: the wrongly ordered features below fit the placeholders (same audio-token
    # counts), so that bug would be silent here; with unequal lengths it would crash in the audio merge
    root = write_msp_fixture(tmp_path / "equal", n_items=16, seconds=(1.5, 1.5)).parent
    trainer, ds, setup = _speech_trainer(tiny_thinker, root, tmp_path)
    g = 2
    rows = [ds[i] for i in range(2) for _ in range(g)]  # TRL's sampler order: [a, a, b, b]
    assert rows[0]["audio_path"] != rows[2]["audio_path"]
    out = trainer._generate_and_score_completions(rows)
    feats, fmask = out["input_features"], out["feature_attention_mask"]
    assert feats.shape[0] == 4
    for i, row in enumerate(rows):  # row i carries the features of its own clip
        own = encode(setup.processor, [row["prompt"]], [read_audio(row["audio_path"])])
        assert torch.equal(feats[i], own["input_features"][0])
        assert torch.equal(fmask[i], own["feature_attention_mask"][0])
    ids = torch.cat([out["prompt_ids"], out["completion_ids"]], dim=1)
    mask = torch.cat([out["prompt_mask"], out["completion_mask"]], dim=1)
    keep = out["completion_ids"].shape[1]
    cmask = out["completion_mask"].bool()
    model = trainer.model
    manual = torch.stack([_manual_logps(model, ids[i], mask[i], feats[i], fmask[i], keep) for i in range(4)])

    def trainer_logps(features, masks, batch_size=2):
        trainer._audio = {"input_features": features, "feature_attention_mask": masks}
        try:
            with torch.no_grad():
                return trainer._get_per_token_logps_and_entropies(model, ids, mask, keep, batch_size=batch_size)[0]
        finally:
            trainer._audio = None

    got = trainer_logps(feats, fmask)
    assert torch.allclose(got[cmask], manual[cmask], atol=1e-5)  # 2 prompts per device, chunks of 2
    assert torch.allclose(trainer_logps(feats, fmask, batch_size=3)[cmask], manual[cmask], atol=1e-5)
    # the R1-AQA bug, features repeated [a, b, a, b] against completions [a, a, b, b]: other numbers
    wrong = [0, 2, 1, 3]
    assert (trainer_logps(feats[wrong], fmask[wrong])[cmask] - manual[cmask]).abs().max() > 1e-4
    # TRL 1.16's own pass scores without the audio: other numbers, silently
    with torch.no_grad():
        plain = GRPOTrainer._get_per_token_logps_and_entropies(trainer, model, ids, mask, keep, batch_size=2)[0]
    assert (plain[cmask] - manual[cmask]).abs().max() > 1e-4
    # through TRL's shuffling, the loss pass still scores each row with its own clip
    torch.manual_seed(5)
    perm = torch.randperm(4)
    torch.manual_seed(5)
    shuffled = shuffle_sequence_dict(out)
    assert torch.equal(shuffled["input_features"], feats[perm])
    captured = []
    inner = trainer._get_per_token_logps_and_entropies

    def spy(*a, **kw):
        res = inner(*a, **kw)
        captured.append(res[0].detach())
        return res

    trainer._get_per_token_logps_and_entropies = spy
    trainer._compute_loss(model, shuffled)
    del trainer._get_per_token_logps_and_entropies
    assert torch.allclose(captured[0][cmask[perm]], manual[perm][cmask[perm]], atol=1e-5)


def test_audio_reaches_every_forward_during_training(tiny_thinker, msp_speech, tmp_path):
    trainer, _, _ = _speech_trainer(tiny_thinker, msp_speech, tmp_path, max_steps=2)
    audio_id = trainer.audio_processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    calls = {"with_audio_tokens": 0, "missing_features": 0}

    def hook(module, args, kwargs):
        ids = kwargs.get("input_ids")
        if ids is not None and (ids == audio_id).any():
            calls["with_audio_tokens"] += 1
            if kwargs.get("input_features") is None:
                calls["missing_features"] += 1

    handle = trainer.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        trainer.train()
    finally:
        handle.remove()
    # per step: generation's prefill (1) and the loss pass (2 chunks of 2 rows... at least 2 calls)
    assert calls["with_audio_tokens"] >= 2 * 2 and calls["missing_features"] == 0
    assert trainer.clip_report.n_clips >= 2


def test_two_grpo_steps_with_audio_then_resume(tiny_thinker, msp_speech, tmp_path):
    from shala_lib.training.run import train

    base = {
        "name": "msp_tiny",
        "dataset": "msp_podcast",
        "data_dir": str(msp_speech),
        "model": tiny_thinker,
        "output_dir": str(tmp_path / "runs"),
        "device": "cpu",
        "prompts_per_step": 2,
        "max_train_items": 8,
        "max_eval_items": 4,
        "eval_batch_size": 4,
        "report_to": [],
        "structured_rollouts": True,  # parsable rollouts: rewards differ within groups, so gradients flow
        "grpo": {
            "max_steps": 2,
            "num_generations": 2,
            "per_device_train_batch_size": 4,
            "max_completion_length": 40,
            "learning_rate": 1e-3,
            "save_steps": 1,
        },
    }
    res = train(ExperimentConfig.from_dict(base))
    run = Path(res["run_dir"])
    assert res["global_step"] == 2 and res["modality"] == "speech+text" and res["metrics"]["n"] == 4
    eff = yaml.safe_load((run / "effective_config.yaml").read_text())
    assert eff["model"]["class"] == "Qwen2_5OmniThinkerForConditionalGeneration"
    assert eff["model"]["modality"] == "speech+text" and eff["model"]["system_prompt"] == OMNI_SYSTEM_PROMPT
    assert eff["grpo_effective"]["generation_kwargs"]["suppress_tokens"] == placeholder_token_ids(
        load_model(tiny_thinker, device="cpu")[0]
    )
    metrics = pd.read_csv(run / "metrics.csv")
    assert metrics["grad_norm"].dropna().gt(0).any()  # the updates are real
    comp = pd.read_parquet(run / "completions.parquet")
    assert len(comp) == 2 * 4 and comp["completion"].str.startswith('{"Angry": ').all()
    # the processor travels with the model (transformers' writes processor_config.json, the composed one the
    # feature extractor's preprocessor_config.json) and loads back as the same kind
    assert load_processor(str(run / "final"))[1] == load_processor(tiny_thinker)[1]
    meta = json.loads(sidecar_path(run / "predictions_test.jsonl").read_text())
    assert meta["fingerprint"]["modality"] == "speech+text"
    base["grpo"]["max_steps"] = 3
    res2 = train(ExperimentConfig.from_dict(base), resume=True)
    assert res2["global_step"] == 3
    comp2 = pd.read_parquet(run / "completions.parquet")
    assert sorted(comp2["step"].unique()) == [0, 1, 2] and len(comp2) == 3 * 4


@pytest.mark.slow
def test_omni_proof_script_runs_cpu_sized(tmp_path):
    """The GPU stage's script (`gpu_proof.sh omni`, 7B-sized there) runs end to end at the tiny size."""
    import subprocess
    import sys

    from shala_lib.paths import project_root

    root = project_root()
    cmd = [sys.executable, str(root / "benchmarks" / "omni_proof.py"), "--size", "tiny", "--device", "cpu"]
    cmd += ["--steps", "2", "--items", "4", "--batch", "2", "--max-new-tokens", "6", "--out", str(tmp_path)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    rep = json.loads((tmp_path / "omni_proof.json").read_text())
    assert rep["zero_shot"]["items"] == 4 and rep["grpo"]["steps"] == 2
    # per step: the rollouts' prefill and 4 loss micro-batches, each with the clips
    assert rep["grpo"]["audio"]["forwards_with_audio_tokens"] == 2 * 5
    assert rep["grpo"]["audio"]["without_features"] == 0
    assert rep["processor"]["compared"] == (importlib.util.find_spec("torchvision") is not None)


def test_paper_config_names_the_omni_thinker(tmp_path, msp_speech):
    """The paper profile's config: Qwen2.5-Omni-7B, each dataset's modality; its effective config names
    the thinker (a local directory with the 7B thinker's config stands in for the Hub id, offline)."""
    from shala_lib.generation.tiny import build_tiny_thinker
    from shala_lib.paths import project_root
    from shala_lib.training.grpo_args import grpo_config
    from shala_lib.training.run_dir import write_effective_config

    paper = project_root() / "configs" / "shala_paper.yaml"
    assert ExperimentConfig.from_yaml(paper).model == "Qwen/Qwen2.5-Omni-7B"
    texts = [p.read_text() for p in (msp_speech / "msp_podcast" / "Transcripts").glob("*.txt")]
    omni7b = str(build_tiny_thinker(tmp_path / "omni7b", texts * 5, size="7b", with_weights=False))
    for dataset, modality in (("msp_podcast", "speech+text"), ("chaosnli", "text")):
        cfg = ExperimentConfig.from_yaml(paper).with_overrides(
            [f"dataset={dataset}", f"model={omni7b}", f"output_dir={tmp_path / 'runs'}", f"name={dataset}_paper"]
        )
        cfg.run_dir.mkdir(parents=True)
        setup = model_setup(cfg, get_spec(dataset), omni7b, load_tokenizer(omni7b))
        eff = yaml.safe_load(write_effective_config(cfg, grpo_config(cfg, on_cpu=True), setup).read_text())
        assert eff["model"]["class"] == "Qwen2_5OmniThinkerForConditionalGeneration"
        assert (eff["model"]["family"], eff["model"]["modality"]) == ("omni", modality)
        assert eff["model"]["system_prompt"] == OMNI_SYSTEM_PROMPT
        assert eff["paper_settings"]["learning_rate"] == {"value": 1e-6, "source": "paper App. D.2 (1e-6)"}
