"""A tiny randomly initialised Qwen2-style model with a tokenizer trained on given texts.

For tests and CPU smoke runs: builds in about a second, offline, with a ChatML chat template.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]


def bpe_tokenizer(
    corpus: list[str],
    vocab_size: int,
    special: list[str],
    chat_template: str,
    names: dict[str, str] | None = None,
) -> Any:
    """A byte-level BPE tokenizer trained on `corpus` (eos `<|im_end|>`, pad `<pad>`, left padding),
    with `special` tokens, a chat template and optional named special tokens (`tok.audio_token`, ...)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tk.train_from_iterator(corpus, trainer)
    extra = {"extra_special_tokens": names} if names else {}
    return _chatml_tokenizer(tk, chat_template, unk_token=None, **extra)


def _chatml_tokenizer(tk: Any, chat_template: str, **tokens: Any) -> Any:
    """`tk` (a `tokenizers.Tokenizer`) as transformers' fast tokenizer of our test models: eos `<|im_end|>`,
    pad `<pad>`, no bos, left padding, `chat_template`; `tokens` adds or overrides its arguments."""
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, **{"eos_token": "<|im_end|>", "pad_token": "<pad>", "bos_token": None, **tokens}
    )
    tok.chat_template = chat_template
    tok.padding_side = "left"
    return tok


def build_tiny_model(
    out_dir: str | Path,
    texts: Iterable[str],
    vocab_size: int = 512,
    seed: int = 0,
    hidden_size: int = 32,
    layers: int = 2,
    initializer_range: float = 0.02,
) -> Path:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    if (out / "config.json").is_file():
        return out
    corpus = list(texts) + ['{"entailment": 0.25, "neutral": 0.5, "contradiction": 0.25}'] * 5
    tok = bpe_tokenizer(corpus, vocab_size, SPECIAL, CHATML)
    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
        initializer_range=initializer_range,  # larger: less uniform logits, varied greedy outputs
    )
    model = Qwen2ForCausalLM(cfg)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


# The Omni chat template's behaviour, written out for the tiny thinker: Qwen's default system prompt when
# the conversation has none; audio content renders as <|audio_bos|><|AUDIO|><|audio_eos|>
OMNI_SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<pad>",
    "<|AUDIO|>",
    "<|audio_bos|>",
    "<|audio_eos|>",
    "<|IMAGE|>",
    "<|VIDEO|>",
    "<|vision_bos|>",
    "<|vision_eos|>",
]
OMNI_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n" + "{{ default_system }}"
    "<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif part['type'] == 'image' %}<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif part['type'] == 'video' %}<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _omni_tokenizer(texts: Iterable[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer with the Omni special tokens (and their names, as Qwen's has them)."""
    from shala_lib.generation.omni import OMNI_SYSTEM_PROMPT

    corpus = list(texts) + ['{"angry": 0.25, "neutral": 0.5, "sad": 0.25}'] * 5
    template = OMNI_CHAT_TEMPLATE.replace("{{ default_system }}", OMNI_SYSTEM_PROMPT)
    return bpe_tokenizer(corpus, vocab_size, OMNI_SPECIAL, template, OMNI_TOKEN_NAMES)


OMNI_TOKEN_NAMES = {
    "audio_token": "<|AUDIO|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
    "image_token": "<|IMAGE|>",
    "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
}


def thinker_config(
    tok: Any, size: str = "tiny", hidden_size: int = 64, layers: int = 2, initializer_range: float = 0.02
) -> Any:
    """A Qwen2.5-Omni thinker config whose special token ids are `tok`'s. `size="7b"`: the dimensions of
    Qwen2.5-Omni-7B's thinker (text 3584 x 28 layers, 152,064-entry vocabulary, audio encoder 1280 x 32
    layers, vision tower 1280 x 32 layers: the checkpoint's, set explicitly since transformers' default
    vision tower is 3584 wide, 3.08B parameters instead of 0.68B; 8.93B in all, `memory.QWEN25_OMNI_7B_THINKER`)
    for random-init GPU measurements; "tiny": text hidden `hidden_size`, 1 audio layer, 1 vision layer."""
    from transformers import Qwen2_5OmniThinkerConfig

    ids = {k: tok.convert_tokens_to_ids(v) for k, v in OMNI_TOKEN_NAMES.items()}
    special = dict(
        audio_token_id=ids["audio_token"],
        image_token_id=ids["image_token"],
        video_token_id=ids["video_token"],
        audio_start_token_id=ids["audio_bos_token"],
        audio_end_token_id=ids["audio_eos_token"],
        vision_start_token_id=ids["vision_bos_token"],  # a fresh config lacks it; get_rope_index reads it
        vision_end_token_id=ids["vision_eos_token"],
    )
    text_special = {"eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}
    if size == "7b":
        return Qwen2_5OmniThinkerConfig(
            text_config={
                "vocab_size": 152_064,
                "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
                **text_special,
            },
            audio_config={
                "d_model": 1280,
                "encoder_layers": 32,
                "encoder_attention_heads": 20,
                "encoder_ffn_dim": 5120,
                "num_mel_bins": 128,
                "output_dim": 3584,
                "max_source_positions": 1500,
                "n_window": 100,
            },
            vision_config={
                "depth": 32,
                "hidden_size": 1280,
                "intermediate_size": 3420,
                "num_heads": 16,
                "out_hidden_size": 3584,
                "patch_size": 14,
                "spatial_merge_size": 2,
                "temporal_patch_size": 2,
                "window_size": 112,
                "fullatt_block_indexes": [7, 15, 23, 31],
            },
            **special,
        )
    if size != "tiny":
        raise ValueError(f"size must be 'tiny' or '7b', got {size!r}")
    head_dim = hidden_size // 4
    return Qwen2_5OmniThinkerConfig(
        text_config={
            "vocab_size": len(tok),
            "hidden_size": hidden_size,
            "intermediate_size": hidden_size * 2,
            "num_hidden_layers": layers,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1e6,
                "mrope_section": [head_dim // 4, head_dim // 8, head_dim // 8],  # sums to head_dim / 2
            },
            "tie_word_embeddings": True,
            "initializer_range": initializer_range,
            **text_special,
        },
        audio_config={
            "d_model": 32,
            "encoder_layers": 1,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 64,
            "num_mel_bins": 128,
            "output_dim": hidden_size,
        },
        vision_config={
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": hidden_size,
            "fullatt_block_indexes": [0],
        },
        initializer_range=initializer_range,
        **special,
    )


def build_tiny_thinker(
    out_dir: str | Path,
    texts: Iterable[str],
    vocab_size: int = 600,
    seed: int = 0,
    hidden_size: int = 64,
    layers: int = 2,
    initializer_range: float = 0.02,
    size: str = "tiny",
    with_weights: bool = True,
) -> Path:
    """A random Qwen2.5-Omni thinker directory (`thinker_config`: ~0.2M parameters at the tiny size) with
    a BPE tokenizer trained on `texts`, an Omni-style chat template and the real model's
    WhisperFeatureExtractor settings (128 mel bins, 16 kHz, 30,000 frames). Built offline.
    `with_weights=False` writes config, tokenizer and feature extractor only (the 7B size is built in
    memory from the config by the GPU proof instead of being written to disk)."""
    import torch
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration, WhisperFeatureExtractor

    out = Path(out_dir)
    if (out / "config.json").is_file():
        return out
    tok = _omni_tokenizer(texts, vocab_size)
    cfg = thinker_config(tok, size, hidden_size, layers, initializer_range)
    out.mkdir(parents=True, exist_ok=True)
    if with_weights:
        torch.manual_seed(seed)
        model = Qwen2_5OmniThinkerForConditionalGeneration(cfg)
        model.generation_config.eos_token_id = tok.eos_token_id
        model.generation_config.pad_token_id = tok.pad_token_id
        model.save_pretrained(out)
    else:
        cfg.save_pretrained(out)
    tok.save_pretrained(out)
    # the real model's feature extractor (Qwen2.5-Omni-7B's preprocessor_config.json): 128 mel bins, 16 kHz,
    # a 300 s window of 30,000 frames (10 ms hop)
    fe = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, chunk_length=300, n_fft=400, hop_length=160)
    fe.save_pretrained(out)
    write_omni_processor_config(out, fe.to_dict())
    return out


# Qwen2.5-Omni-7B's image and video processor settings (its processor_config.json): never run here (text and
# speech only), written so that transformers' `AutoProcessor` builds the real `Qwen2_5OmniProcessor` where it can
# (with torchvision) and the audio path is tested against it
_VISION = {
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "merge_size": 2,
    "patch_size": 14,
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "temporal_patch_size": 2,
}


def write_omni_processor_config(out_dir: str | Path, feature_extractor: dict[str, Any]) -> Path:
    """`processor_config.json` as transformers' `Qwen2_5OmniProcessor.save_pretrained` writes it (the feature
    extractor's settings, Qwen2-VL image and video processors, the processor class), without building the
    processor (which needs torchvision)."""
    fe = {k: v for k, v in feature_extractor.items() if k != "processor_class"}
    doc = {
        "feature_extractor": fe,
        "image_processor": {
            **_VISION,
            "image_processor_type": "Qwen2VLImageProcessor",
            "size": {"longest_edge": 12845056, "shortest_edge": 3136},
        },
        "processor_class": "Qwen2_5OmniProcessor",
        "video_processor": {
            **_VISION,
            "video_processor_type": "Qwen2VLVideoProcessor",
            "size": {"longest_edge": 12845056, "shortest_edge": 3136},
        },
    }
    path = Path(out_dir) / "processor_config.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


# ---------------------------------------------------------------------------------------------------
# A contextual-bandit model for the learning check (benchmarks/learning_check.py): a word-level
# tokenizer in which every word of the prompt, every JSON key segment of the answer and every answer
# level ("0.0" ... "1.0") is ONE token, so that under prefill and the simplex grammar a rollout is
# [level, key, level, key, level, "}", eos] and the policy's only choices are two level tokens.

TENTHS: tuple[str, ...] = tuple(f"{i / 10:.1f}" for i in range(11))
# ChatML that shows the model only the first paragraph of a user turn (the paper prompt's target section:
# the message); the task sentence and the JSON output rules, the same for every item, are left out, so the
# cue words are not diluted among ~90 constant tokens (the answer's shape comes from prefill + grammar)
CHATML_FIRST_PARAGRAPH = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['role'] == 'user' %}{{ message['content'].split('\n\n')[0] }}"
    "{% else %}{{ message['content'] }}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
BANDIT_SPECIAL = [*SPECIAL, "<unk>"]


def word_level_tokenizer(texts: Iterable[str], answer_pieces: Iterable[str], chat_template: str = CHATML) -> Any:
    """A word-level tokenizer: lower-cased alphabetic words of `texts` (and the chat template's role
    names) are one token each, anything else in a prompt (digits, punctuation) is `<unk>`, whitespace
    is dropped; each of `answer_pieces` (the JSON key segments, `}`, the level strings) is an added
    token matched verbatim. Decoding concatenates the pieces (`decoders.Fuse`), so an answer decodes to
    exactly the JSON text the parser and the answer grammar read."""
    import re

    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers

    words = sorted({w for t in [*texts, "system user assistant"] for w in re.findall(r"[a-z]+", t.lower())})
    vocab = {tok: i for i, tok in enumerate([*BANDIT_SPECIAL, *words])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.decoder = decoders.Fuse()
    tk.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in BANDIT_SPECIAL])
    tk.add_tokens([AddedToken(p, normalized=False, special=False) for p in dict.fromkeys(answer_pieces)])
    return _chatml_tokenizer(tk, chat_template, unk_token="<unk>", clean_up_tokenization_spaces=False)


def build_bandit_model(
    out_dir: str | Path,
    texts: Iterable[str],
    keys: Iterable[str],
    levels: Iterable[str] = TENTHS,
    seed: int = 0,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    initializer_range: float = 0.02,
    first_paragraph_only: bool = True,
) -> Path:
    """A tiny randomly initialised Llama-style model with `word_level_tokenizer`: the answer's JSON key
    segments for `keys` (`shala_lib.generation.constrained.key_segments`), `}` and each of
    `levels` are single tokens. Built offline in about a second. A folder built by the same recipe (the
    arguments and the texts, recorded in `bandit_recipe.json`) is reused; one built by another recipe is
    built again in place, never reused silently."""
    import hashlib
    import json
    import shutil

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from shala_lib.generation.constrained import key_segments

    out = Path(out_dir)
    texts, keys, levels = list(texts), list(keys), list(levels)
    recipe = {
        "texts_sha256": hashlib.sha256("\n".join(texts).encode()).hexdigest(),
        "keys": keys,
        "levels": levels,
        "seed": seed,
        "hidden_size": hidden_size,
        "layers": layers,
        "heads": heads,
        "initializer_range": initializer_range,
        "first_paragraph_only": first_paragraph_only,
    }
    recorded = out / "bandit_recipe.json"
    if (out / "config.json").is_file():
        if recorded.is_file() and json.loads(recorded.read_text()) == recipe:
            return out
        shutil.rmtree(out)  # a generated model of another recipe (or of an older version without the record)
    segs = key_segments(keys)
    template = CHATML_FIRST_PARAGRAPH if first_paragraph_only else CHATML
    tok = word_level_tokenizer(texts, [*segs, *levels], template)
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
        initializer_range=initializer_range,
    )
    model = LlamaForCausalLM(cfg)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    recorded.write_text(json.dumps(recipe, indent=2) + "\n")
    return out
