"""Speech clips for audio models: read any WAV/FLAC/OGG, mix to mono, resample to the processor's rate.

Reading uses `soundfile` (libsndfile) and resampling `soxr` (the high-quality SoX resampler), the
libraries transformers' own audio utilities rely on. A Whisper-style feature extractor reads at most its
window (`FeatureWindow`, from the model's own feature-extractor config: Qwen2.5-Omni-7B's is 300 s, 30,000
mel frames of 10 ms; Whisper's 30 s): a longer clip is cut to its first window. That is never silent:
`ClipReport` counts such clips and names the longest, and callers log it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # Qwen2.5-Omni's WhisperFeatureExtractor


@dataclass(frozen=True)
class FeatureWindow:
    """What a feature extractor reads of a clip: `max_frames` mel frames of `hop_length` samples at
    `sampling_rate` Hz (Qwen2.5-Omni-7B: 30,000 x 160 at 16 kHz = 300 s)."""

    sampling_rate: int
    hop_length: int
    max_frames: int

    @property
    def seconds(self) -> float:
        return self.max_frames * self.hop_length / self.sampling_rate

    @property
    def max_samples(self) -> int:
        return self.max_frames * self.hop_length

    def frames(self, seconds: float) -> int:
        """Mel frames the extractor gives for a clip of `seconds` (at most the window)."""
        return min(math.ceil(round(seconds * self.sampling_rate) / self.hop_length), self.max_frames)


def feature_window(feature_extractor: Any) -> FeatureWindow:
    """The window of a Whisper-style feature extractor (or of a processor holding one), from its config."""
    fe = getattr(feature_extractor, "feature_extractor", feature_extractor)
    hop = int(fe.hop_length)
    frames = int(getattr(fe, "nb_max_frames", 0) or int(fe.n_samples) // hop)
    return FeatureWindow(sampling_rate=int(fe.sampling_rate), hop_length=hop, max_frames=frames)


class AudioReadError(OSError):
    """A clip is missing or cannot be decoded; the message names the file."""


def read_audio(path: str | Path, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 samples of `path` at `rate` Hz (channels averaged, resampled with soxr)."""
    import soundfile as sf
    import soxr

    path = Path(path)
    if not path.is_file():
        raise AudioReadError(f"{path}: audio file not found")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as e:  # type: ignore[attr-defined]
        raise AudioReadError(f"{path}: cannot decode audio ({e})") from e
    if data.shape[0] == 0:
        raise AudioReadError(f"{path}: the clip has no samples")
    mono = data.mean(axis=1)
    if sr != rate:
        mono = soxr.resample(mono, sr, rate)
    return np.ascontiguousarray(mono, dtype=np.float32)


def clip_seconds(path: str | Path) -> float:
    """A clip's duration from its header (no decoding)."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioReadError(f"{path}: audio file not found")
    info = sf.info(str(path))
    return float(info.frames) / float(info.samplerate)


@dataclass
class ClipReport:
    """Counts the clips longer than the feature window (cut to its first `window_s` seconds: `feature_window`
    of the model's feature extractor)."""

    window_s: float
    seen: set[str] = field(default_factory=set)
    long: dict[str, float] = field(default_factory=dict)

    @property
    def n_clips(self) -> int:
        """Distinct clips seen (a clip heard at every training step counts once)."""
        return len(self.seen)

    def add(self, path: str | Path, seconds: float) -> None:
        self.seen.add(str(path))
        if seconds > self.window_s + 1e-9:
            self.long[str(path)] = round(float(seconds), 3)

    @property
    def n_long(self) -> int:
        return len(self.long)

    def message(self, where: str = "") -> str | None:
        if not self.long:
            return None
        worst = sorted(self.long.items(), key=lambda kv: -kv[1])[:3]
        names = ", ".join(f"{Path(p).name} ({s:.1f} s)" for p, s in worst)
        return (
            f"{where + ': ' if where else ''}{self.n_long} of {self.n_clips} clip(s) are longer than the "
            f"{self.window_s:.0f} s feature window and were cut to their first {self.window_s:.0f} s; longest: {names}"
        )

    def log(self, where: str = "") -> None:
        msg = self.message(where)
        if msg:
            log.warning(msg)

    def as_dict(self) -> dict[str, object]:
        return {"n_clips": self.n_clips, "n_longer_than_window": self.n_long, "window_s": self.window_s}


def survey_clips(paths: list[str], window_s: float) -> tuple[np.ndarray, ClipReport]:
    """(duration of each clip in seconds, report of those longer than the window)."""
    report = ClipReport(window_s=window_s)
    secs = np.zeros(len(paths))
    for i, p in enumerate(paths):
        secs[i] = clip_seconds(p)
        report.add(p, secs[i])
    return secs, report
