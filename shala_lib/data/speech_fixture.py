"""A generated MSP-Podcast-shaped corpus with real audio files, for tests and the GPU proof.

MSP-Podcast is licensed (users bring their copy), so code that reads clips is exercised on clips
synthesised here: voiced, speech-like signals (a glottal pulse train at a pitch that glides, shaped by
three formant resonances and a syllable-rate envelope) whose pitch and loudness depend on the item's
majority emotion, written at several sample rates, channel counts and lengths, in the release's layout
(`Labels/labels_detailed.csv`, `Transcripts/*.txt`, `Audios/*.wav`).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

NAMES = ("Angry", "Contempt", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")
# the one-letter codes of the per-column label form
CODES = dict(zip(NAMES, ("A", "C", "D", "F", "H", "N", "S", "U")))
# (pitch Hz, loudness) per majority emotion: the audio carries the label, as speech would
VOICE = {
    "Angry": (220.0, 0.8),
    "Contempt": (140.0, 0.4),
    "Disgust": (130.0, 0.5),
    "Fear": (260.0, 0.5),
    "Happy": (240.0, 0.7),
    "Neutral": (150.0, 0.4),
    "Sad": (110.0, 0.25),
    "Surprise": (300.0, 0.7),
}
RATES = (16_000, 8_000, 22_050, 44_100)


def synth_speech(seconds: float, rate: int, pitch: float, loudness: float, seed: int = 0) -> np.ndarray:
    """A speech-like mono signal: glottal pulses at a gliding pitch through three formant filters,
    modulated at a syllable rate of ~4 Hz, plus a little breath noise."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = max(int(seconds * rate), 1)
    t = np.arange(n) / rate
    f0 = pitch * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6.28)))
    phase = np.cumsum(f0) / rate
    pulses = (np.diff(np.floor(phase), prepend=0.0) > 0).astype(float)
    signal = pulses
    for formant, bw in ((700.0, 130.0), (1220.0, 70.0), (2600.0, 160.0)):
        r = np.exp(-np.pi * bw / rate)
        theta = 2 * np.pi * min(formant, rate / 2 - 100) / rate
        signal = signal + lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], pulses)
    envelope = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(3.0, 5.0) * t - np.pi / 2))
    out = signal * envelope + 0.02 * rng.standard_normal(n)
    out = out / (np.abs(out).max() + 1e-9) * loudness
    return out.astype(np.float32)


def write_clip(path: Path, samples: np.ndarray, rate: int, channels: int = 1) -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.stack([samples] * channels, axis=1) if channels > 1 else samples
    sf.write(str(path), data, rate, subtype="PCM_16")
    return path


def write_msp_fixture(
    root: str | Path,
    n_items: int = 40,
    seed: int = 0,
    form: str = "detail",
    long_clips: int = 0,
    seconds: tuple[float, float] = (0.6, 2.5),
) -> Path:
    """`<root>/msp_podcast/` in the release layout with `n_items` clips. Each item has 2-6 raters whose
    primary emotion is mostly the item's majority class; clip i is written at `RATES[i % 4]` Hz, every
    third one in stereo, lengths drawn from `seconds`; `long_clips` of them last 31 s (beyond the 30 s
    feature window). `form`: "detail" (v1.12 FileName,EmoDetail) or "columns" (EmoClass_Major per row)."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "msp_podcast"
    for sub in ("Labels", "Transcripts", "Audios"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    rows: list[list[str]] = []
    for i in range(n_items):
        name = f"MSP-PODCAST_{i:04d}_0001.wav"
        major = NAMES[i % len(NAMES)]
        votes = [major] * int(rng.integers(1, 4)) + [str(x) for x in rng.choice(NAMES, int(rng.integers(1, 3)))]
        for k, primary in enumerate(votes):
            worker = f"WORKER{i * 10 + k:08d}"
            if form == "detail":
                second = "" if k % 3 == 2 else f"{primary},Neutral"  # absent on some rows, as released
                detail = f"{worker}; {primary}; {second}; A:4.000000; V:5.000000; D:3.000000;".replace("; ;", ";")
                rows.append([name, detail])
            else:
                rows.append([name, worker, CODES[primary] if k % 2 else primary, "N", "4.0", "5.0", "3.0"])
        (folder / "Transcripts" / f"{Path(name).stem}.txt").write_text(
            f"I {'really ' * (i % 3)}think that is what happened at the {['market', 'office', 'game'][i % 3]}.\n",
            encoding="utf-8",
        )
        pitch, loud = VOICE[major]
        drawn = float(rng.uniform(*seconds))  # always drawn: the labels do not depend on long_clips
        secs = 31.0 if i < long_clips else drawn
        rate = RATES[i % len(RATES)]
        clip = synth_speech(secs, rate, pitch, loud, seed=seed * 1000 + i)
        write_clip(folder / "Audios" / name, clip, rate, channels=2 if i % 3 == 2 else 1)
    header = (
        ["FileName", "EmoDetail"]
        if form == "detail"
        else ["FileName", "Worker", "EmoClass_Major", "EmoClass_Second", "EmoAct", "EmoVal", "EmoDom"]
    )
    with open(folder / "Labels" / "labels_detailed.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return folder
