"""Whole models against the LiteRT interpreter (reference kernels), every output of every invoke bit for bit:
the repo's digits depthwise CNN on the whole test split, and two published streaming wake-word models that ship
inside the pymicro-wakeword wheel (resource variables, CALL_ONCE, SPLIT_V, STRIDED_SLICE, LOGISTIC, uint8 output),
compared tensor by tensor on features of synthetic audio and on uniform / quiet / loud int8 frames."""
import numpy as np
import pytest

from sw_model.importers.tflite.models.digits_dwcnn import MODEL_PATH, load_test_set
from sw_model.importers.tflite.program import TFLiteProgram
from sw_model.host.network_int8 import Int8GoldenBackend
from sw_model.importers.tflite.models.wakeword import feature_stream, model_path
from tests.importers.litert import interpreter, invoke


def test_digits_model_matches_litert_on_the_whole_test_set():
    x, y = load_test_set()
    prog, it = TFLiteProgram(MODEL_PATH), interpreter(MODEL_PATH)
    ours_right = theirs_right = 0
    for k in range(len(x)):
        got, want = prog.invoke(x[k]), invoke(it, x[k])
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_array_equal(g, w, err_msg=f"image {k}")
        ours_right += int(got[1].argmax() == y[k])
        theirs_right += int(want[1].argmax() == y[k])
    assert ours_right == theirs_right
    assert ours_right / len(x) > 0.97                      # the float64 network scores 0.992


def test_digits_model_every_tensor_on_the_beat_level_chain_model():
    """A few images with the GEMMs on the chain's beat-level golden model; every intermediate tensor too."""
    x, _ = load_test_set()
    prog, it = TFLiteProgram(MODEL_PATH), interpreter(MODEL_PATH, keep=True)
    for k in range(3):
        prog.invoke(x[k], backend=Int8GoldenBackend(), keep=True)
        invoke(it, x[k])
        for op in prog.main.operators:
            np.testing.assert_array_equal(prog.tensors[op.outputs[0]], it.get_tensor(op.outputs[0]),
                                          err_msg=f"op {op.index} {op.op}")


def _stream(shape, n, seed):
    """A feature stream: uniform int8 frames, then quiet frames, then loud ones (exercises the clamps)."""
    rng = np.random.default_rng(seed)
    frames = [rng.integers(-128, 128, shape) for _ in range(n // 3)]
    frames += [rng.integers(-128, -100, shape) for _ in range(n // 3)]
    frames += [rng.integers(60, 128, shape) for _ in range(n - 2 * (n // 3))]
    return [f.astype(np.int8) for f in frames]


@pytest.mark.parametrize("name", ["okay_nabu", "alexa", "hey_jarvis", "hey_mycroft"])
def test_streaming_wakeword_model_matches_litert_tensor_by_tensor(name):
    path = model_path(name)
    prog, it = TFLiteProgram(path), interpreter(path, keep=True)
    assert {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"} <= \
        {op.op for sub in prog.model.subgraphs for op in sub.operators}
    d = prog.input_details()[0]
    frames = list(feature_stream(160, d["scale"][0], d["zero_point"][0])) + _stream(d["shape"], 30, 1)
    compared, outputs = 0, set()
    for k, frame in enumerate(frames):
        got, want = prog.invoke(frame, keep=True), invoke(it, frame)
        assert got[0].dtype == want[0].dtype == np.uint8
        np.testing.assert_array_equal(got[0], want[0], err_msg=f"invoke {k}")
        outputs.add(int(got[0].ravel()[0]))
        for op in prog.main.operators:
            for o in op.outputs:
                if prog.main.tensors[o].type_name in ("INT8", "UINT8"):
                    np.testing.assert_array_equal(prog.tensors[o], it.get_tensor(o),
                                                  err_msg=f"invoke {k}, op {op.index} {op.op}")
                    compared += 1
    assert compared > 190 * 30
    if name in ("okay_nabu", "alexa"):                     # on this stream their probabilities move (the other
        assert len(outputs) > 3                            # two stay at 0; their int8 tensors are compared anyway)


def test_streaming_state_is_kept_between_invokes_and_reset_restores_it():
    prog = TFLiteProgram(model_path("okay_nabu"))
    frames = _stream(prog.input_details()[0]["shape"], 6, 2)
    first = [prog.invoke(f, keep=True) for f in frames]
    state = {k: v.copy() for k, v in prog.variables.items()}
    assert len(state) == 6 and prog.called_once == {1}
    prog.invoke(frames[0])                              # the same frame again: the state has moved on
    assert any(not np.array_equal(state[k], prog.variables[k]) for k in state)
    prog.reset()
    assert prog.variables == {} and prog.called_once == set()
    again = [prog.invoke(f) for f in frames]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(prog.variables[next(iter(state))], state[next(iter(state))])


@pytest.mark.slow
def test_committed_digits_model_is_what_its_script_writes(tmp_path):
    """The numpy training is seeded: the script reproduces the committed .tflite byte for byte (~20 s)."""
    from sw_model.importers.tflite.models.digits_dwcnn import main
    main(["--out", str(tmp_path / "m.tflite")])
    assert (tmp_path / "m.tflite").read_bytes() == MODEL_PATH.read_bytes()
