"""GRPO with speech: every forward pass sees the clip of its own row.

TRL 1.16's `GRPOTrainer` passes a processor's outputs to `generate`, but its log-prob passes
(`_get_per_token_logps_and_entropies`, called for the old/ref log-probs in
`_generate_and_score_completions` and for the loss in `_compute_loss`) forward image tensors only. With
audio they silently score completions *without* the clip: the thinker skips the audio merge when
`input_features` is None, so the policy gradient would be computed for a text-only model.

`SpeechGRPOTrainer` carries `input_features` / `feature_attention_mask` as two more per-row tensors of the
batch dict. TRL's sampler already repeats each prompt for its rollouts ([a, a, b, b]), and the features
are computed for those rows, one clip per row, so they are aligned with the completions by construction
(the public R1-AQA / Ke-Omni-R trainers `repeat` the features into [a, b, a, b] instead, which is right
only at one prompt per device). `shuffle_sequence_dict` and `split_tensor_dict` then move them with their
rows, and every log-prob pass gets the rows' own slice.

Override set, against trl 1.16.0 (`trl/trainer/grpo_trainer.py`):
- `_generate_and_score_completions`: hands the rows' clip paths to tokenisation and returns the features
  in the batch dict;
- `_tokenize_prompts`: encodes prompt text and clip together with the audio processor (audio tokens
  expanded), and gives the features to `generate` as multimodal fields;
- `_get_per_token_logps_and_entropies`: slices the features per chunk and passes them to the model;
- `_compute_loss`: makes the features of the (shuffled, split) rows available to the pass above.
The dataset needs an `audio_path` column (paths, not arrays: HF `datasets` would turn arrays into lists).
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from shala_lib.data.audio import ClipReport, clip_seconds, feature_window, read_audio
from shala_lib.generation.omni import encode
from shala_lib.training.rollouts import StructuredGRPOTrainer

AUDIO_KEYS = ("input_features", "feature_attention_mask")


class SpeechGRPOTrainer(StructuredGRPOTrainer):
    """`StructuredGRPOTrainer` whose rows carry a clip each (`audio_column`), heard by generation and by
    every log-prob pass."""

    def __init__(self, *args: Any, audio_processor: Any, audio_column: str = "audio_path", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.audio_processor = audio_processor
        self.audio_column = audio_column
        self.clip_report = ClipReport(window_s=feature_window(audio_processor).seconds)
        self._row_clips: list[str] | None = None  # set for one `_generate_and_score_completions` call
        self._audio: dict[str, torch.Tensor] | None = None  # features of the rows being scored

    def _feature_dtype(self) -> torch.dtype:
        return next(self.accelerator.unwrap_model(self.model).parameters()).dtype

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        missing = [i for i, x in enumerate(inputs) if not x.get(self.audio_column)]
        if missing:
            raise KeyError(f"{len(missing)} row(s) of this batch have no {self.audio_column!r}")
        self._row_clips = [str(x[self.audio_column]) for x in inputs]
        try:
            output = super()._generate_and_score_completions(inputs)
            if self._audio is None:
                raise RuntimeError("the audio features were not computed for this batch (TRL path changed?)")
            output.update(self._audio)
        finally:
            self._row_clips, self._audio = None, None
        return output

    def _tokenize_prompts(self, prompts: list[Any]) -> Any:
        if self._row_clips is None:
            return super()._tokenize_prompts(prompts)
        if len(prompts) != len(self._row_clips):
            raise RuntimeError(f"{len(prompts)} prompts but {len(self._row_clips)} clips")
        cache: dict[str, Any] = {}
        for path in self._row_clips:
            if path not in cache:
                cache[path] = read_audio(path)
                self.clip_report.add(path, clip_seconds(path))
        enc = encode(self.audio_processor, prompts, [cache[p] for p in self._row_clips])
        prompt_ids = [row[mask.bool()].tolist() for row, mask in zip(enc["input_ids"], enc["attention_mask"])]
        device = self.accelerator.device
        self._audio = {
            "input_features": enc["input_features"].to(device, self._feature_dtype()),
            "feature_attention_mask": enc["feature_attention_mask"].to(device),
        }
        return prompt_ids, None, dict(self._audio)  # multimodal fields: `generate` hears the clips

    def _get_per_token_logps_and_entropies(
        self,
        model: Any,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        logits_to_keep: int,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        audio = self._audio
        if audio is None:
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size, **kwargs
            )
        n = input_ids.size(0)
        if audio["input_features"].size(0) != n:
            raise RuntimeError(f"{audio['input_features'].size(0)} clips for {n} rows")
        batch_size = batch_size or n
        logps, entropies, aux = [], [], []
        for start in range(0, n, batch_size):
            end = min(start + batch_size, n)
            with_audio = functools.partial(
                model,
                input_features=audio["input_features"][start:end],
                feature_attention_mask=audio["feature_attention_mask"][start:end],
            )
            lp, ent, ax = super()._get_per_token_logps_and_entropies(
                with_audio, input_ids[start:end], attention_mask[start:end], logits_to_keep, end - start, **kwargs
            )
            logps.append(lp)
            if ent is not None:
                entropies.append(ent)
            if ax is not None:
                aux.append(ax)
        return (
            torch.cat(logps, dim=0),
            torch.cat(entropies, dim=0) if entropies else None,
            torch.stack(aux).mean() if aux else None,
        )

    def _compute_loss(self, model: Any, inputs: dict[str, Any]) -> Any:
        if not all(k in inputs for k in AUDIO_KEYS):
            raise RuntimeError("a speech batch reached the loss without its audio features")
        self._audio = {k: inputs[k] for k in AUDIO_KEYS}
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self._audio = None
