"""Write the repo's networks as ONNX files (onnx.helper, sw_model/importers/onnx/models.py): the digits MLP and
CNN (trained weights of `hwgen run digits-mlp` / `digits-cnn`) and the six-layer MiniLM encoder.

    python benchmarks/export_onnx.py -o out/onnx [digits-mlp digits-cnn minilm]

The files are the ones `hwgen compare digits-mlp ...` uses (kept in the build cache); any ONNX tool reads them.
"""
import argparse
import shutil
from pathlib import Path

from hwgen.host.onnx_models import builtin_model

WRITTEN = ("digits-mlp", "digits-cnn", "minilm")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", default=list(WRITTEN), choices=WRITTEN)
    p.add_argument("-o", "--output", default="out/onnx")
    args = p.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.models:
        dst = out / f"{name}.onnx"
        shutil.copyfile(builtin_model(name), dst)
        print(f"wrote {dst} ({dst.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
