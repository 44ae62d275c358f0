"""The published microWakeWord streaming models that ship inside the pymicro-wakeword wheel, and a feature stream
to run them on: seeded synthetic audio (noise bursts, tones, chirps and silence at 16 kHz) through the same
audio front end the wheel uses (`pymicro_wakeword.MicroWakeWordFeatures`, TFLite Micro's front end), quantized as
the wheel quantizes it (round(f / scale + zero point), here also clipped to int8), 3 frames per invoke. No
speech data ships with the packages, so the stream tests the arithmetic on realistic feature statistics, not
wake-word accuracy."""
from __future__ import annotations

from pathlib import Path

import numpy as np

NAMES = ("alexa", "hey_jarvis", "hey_mycroft", "okay_nabu")


def _package():
    try:
        import pymicro_wakeword
    except ImportError:
        raise FileNotFoundError("the microWakeWord models ship inside pymicro-wakeword: run "
                                "`pip install pymicro-wakeword`") from None
    return pymicro_wakeword


def model_path(name: str) -> Path:
    if name not in NAMES:
        raise ValueError(f"wake-word model: got {name!r}, allowed: {', '.join(NAMES)}")
    return Path(_package().__file__).parent / "models" / f"{name}.tflite"


def synthetic_audio(seconds: float, seed: int = 0) -> np.ndarray:
    """int16 mono audio at 16 kHz: half-second segments of noise, a tone, a chirp or silence."""
    rng = np.random.default_rng(seed)
    rate, seg = 16000, 8000
    parts = []
    for _ in range(int(seconds * rate) // seg):
        t = np.arange(seg) / rate
        kind = rng.integers(4)
        amp = rng.uniform(500, 12000)
        if kind == 0:
            parts.append(rng.normal(0, amp / 3, seg))
        elif kind == 1:
            parts.append(amp * np.sin(2 * np.pi * rng.uniform(100, 4000) * t))
        elif kind == 2:
            f0, f1 = rng.uniform(100, 4000, 2)
            parts.append(amp * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * t[-1]))))
        else:
            parts.append(rng.normal(0, 20, seg))
    return np.clip(np.concatenate(parts), -32768, 32767).astype(np.int16)


def feature_stream(invokes: int, input_scale: float, input_zero_point: int, seed: int = 0) -> np.ndarray:
    """(invokes, 1, 3, 40) int8 model inputs from synthetic audio (3 feature frames of 10 ms per invoke)."""
    feats = _package().MicroWakeWordFeatures()
    frames = []
    seconds = 1.0
    while len(frames) < 3 * invokes:
        frames = [f.reshape(40) for f in feats.process_streaming(synthetic_audio(seconds, seed).tobytes())]
        feats.reset()
        seconds *= 2
    f = np.asarray(frames[:3 * invokes], np.float64).reshape(invokes, 1, 3, 40)
    return np.clip(np.round(f / input_scale + input_zero_point), -128, 127).astype(np.int8)
