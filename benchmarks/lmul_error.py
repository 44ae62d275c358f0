"""L-Mul precision vs exact FP8 multiplication: the paper's error claim, measured on the golden models.

Luo & Sun (arXiv 2410.00907) claim that L-Mul with a 3-bit mantissa is more precise than float8_e5m2
multiplication and that L-Mul with a 4-bit mantissa is about as precise as float8_e4m3 multiplication.

Random part (x, y ~ N(0,1) in float64, --pairs pairs):
  * L-Mul (adder and formula modes) with k = 2, 3, 4, 5 mantissa bits. The operands are rounded RNE to e8m{k}
    (8 exponent bits, bias 127, like bf16/fp32: nothing under- or overflows for N(0,1) data; the script counts
    and reports any result that is flushed to zero or saturated) and multiplied with sw_model.lmul.golden.lmul.
  * Exact E4M3 (fn) and E5M2 multiplication (sw_model.lmul.golden.fmul: operands rounded RNE, product rounded RNE,
    subnormals kept, saturating overflow), and, for the comparison with the spec's sanity numbers, the exact
    float64 product of the fp8-rounded operands (input rounding only).
  Each row gives the mean relative error against the exact product of the ROUNDED operands and against the exact
  product of the unrounded inputs. Pairs whose rounded-operand product is 0 (an fp8 operand rounded to zero) are
  left out of the first mean only (counted in the JSON).

Exhaustive part: L-Mul E4M3/E5M2/E3M4 (both modes) and exact FMul E4M3/E5M2 over all normal x normal pairs
whose exact product lies in [min normal, max finite]: mean and max relative error against that exact product.

Ordering checks (on the random part, error against the unrounded product, both L-Mul modes):
  * L-Mul k=3 is more precise than E5M2 multiplication (mean relative error strictly lower);
  * L-Mul k=4 is comparable to E4M3 multiplication: the ratio of mean relative errors lies in [1/BAND, BAND],
    BAND = 1.5.
The script prints PASS/FAIL lines and exits with status 1 when a check fails.

Writes <out>/lmul_error.json and <out>/lmul_error.md.

    python benchmarks/lmul_error.py [--pairs 200000] [--seed 1] [--out docs/results] [--no-exhaustive]
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import shlex
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from sw_model.lmul.golden import fmul, lmul  # noqa: E402
from sw_model.numerics.formats import decode, encode, get_format  # noqa: E402

K_VALUES = (2, 3, 4, 5)
MODES = ("adder", "formula")
BAND = 1.5
EXHAUSTIVE_LMUL = ("e4m3", "e5m2", "e3m4")
EXHAUSTIVE_FMUL = ("e4m3", "e5m2")

# ALGORITHMS.md section 1, "OWN check" (N(0,1), 1e6 pairs, integer-add L-Mul, operands rounded in fp32 to k bits;
# the reference product is not stated for the L-Mul numbers): sanity values, not the paper's.
SPEC_RANDOM = {
    "lmul-adder-k2": 0.143, "lmul-adder-k3": 0.057, "lmul-adder-k4": 0.053, "lmul-adder-k5": 0.028,
    "inputs-e4m3": 0.034, "fmul-e4m3": 0.045, "inputs-e5m2": 0.061, "fmul-e5m2": 0.072,
}
# VUB write-up (arXiv 2412.18948 Tab. IV): exhaustive over FP8 pairs, bit-level L-Mul vs exact; their exact pair
# domain and carry handling differ from ours, so these are for orientation only.
SPEC_EXHAUSTIVE_VUB = {"e4m3": 0.068, "e5m2": 0.111, "e3m4": 0.069}


def lmul_format_name(k: int) -> str:
    """The operand format of the k-mantissa-bit L-Mul rows: 8 exponent bits (bias 127)."""
    return f"e8m{k}"


def _rel(approx: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.abs(approx - ref) / np.abs(ref)


def _stats(rel: np.ndarray) -> dict:
    n = rel.size
    return {"n": int(n), "mean": float(rel.mean()), "se": float(rel.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
            "max": float(rel.max())}


def _row(key, label, fmt_name, approx, xr, yr, x, y, fmt):
    ref_rounded = xr * yr
    ref_exact = x * y
    nz = ref_rounded != 0
    vs_rounded = _stats(_rel(approx[nz], ref_rounded[nz]))
    vs_exact = _stats(_rel(approx, ref_exact))
    flushed = int(np.count_nonzero((approx == 0) & (ref_rounded != 0)))
    saturated = int(np.count_nonzero(np.abs(approx) == fmt.max_finite)) if fmt is not None else 0
    return {"key": key, "label": label, "format": fmt_name, "vs_rounded": vs_rounded, "vs_exact": vs_exact,
            "rounded_ref_zero": int(np.count_nonzero(~nz)), "flushed_to_zero": flushed, "saturated": saturated,
            "spec": SPEC_RANDOM.get(key)}


def random_rows(pairs: int = 200_000, seed: int = 1) -> list[dict]:
    """The random-sample rows (see the module docstring). Every row uses the same x, y."""
    if pairs < 2:
        raise ValueError(f"pairs: got {pairs}, allowed: an integer >= 2")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(pairs)
    y = rng.standard_normal(pairs)
    rows = []
    for k in K_VALUES:
        name = lmul_format_name(k)
        fmt = get_format(name)
        a, b = encode(x, fmt), encode(y, fmt)
        xr, yr = decode(a, fmt), decode(b, fmt)
        for mode in MODES:
            p = decode(lmul(a, b, fmt, mode=mode), fmt)
            rows.append(_row(f"lmul-{mode}-k{k}", f"L-Mul {mode}, k={k}", name, p, xr, yr, x, y, fmt))
    for name in ("e4m3", "e5m2"):
        fmt = get_format(name)
        a, b = encode(x, fmt, overflow="saturate"), encode(y, fmt, overflow="saturate")
        xr, yr = decode(a, fmt), decode(b, fmt)
        p = decode(fmul(a, b, fmt, overflow="saturate"), fmt)
        rows.append(_row(f"fmul-{name}", f"exact {name.upper()} multiply (FMul)", name, p, xr, yr, x, y, fmt))
        rows.append(_row(f"inputs-{name}", f"{name.upper()} inputs, exact float64 product (input rounding only)",
                         name, xr * yr, xr, yr, x, y, None))
    return rows


def _normal_codes(fmt):
    codes = np.arange(1 << fmt.bits, dtype=np.int64)
    v = decode(codes, fmt)
    return codes[np.isfinite(v) & (np.abs(v) >= fmt.min_normal)]


def exhaustive_rows() -> list[dict]:
    """All normal x normal pairs whose exact product lies in [min normal, max finite]."""
    rows = []
    jobs = [(n, "lmul", m) for n in EXHAUSTIVE_LMUL for m in MODES] + [(n, "fmul", None) for n in EXHAUSTIVE_FMUL]
    for name, unit, mode in jobs:
        fmt = get_format(name)
        codes = _normal_codes(fmt)
        a, b = (g.ravel() for g in np.meshgrid(codes, codes, indexing="ij"))
        exact = decode(a, fmt) * decode(b, fmt)
        keep = (np.abs(exact) >= fmt.min_normal) & (np.abs(exact) <= fmt.max_finite)
        a, b, exact = a[keep], b[keep], exact[keep]
        out = lmul(a, b, fmt, mode=mode) if unit == "lmul" else fmul(a, b, fmt)
        p = decode(out, fmt)
        rel = _rel(p, exact)
        label = f"L-Mul {name.upper()} {mode}" if unit == "lmul" else f"exact FMul {name.upper()}"
        rows.append({"key": f"{unit}-{name}" + (f"-{mode}" if mode else ""), "label": label, "format": name,
                     "pairs": int(a.size), "mean": float(rel.mean()), "max": float(rel.max()),
                     "flushed_to_zero": int(np.count_nonzero(p == 0)),
                     "vub": SPEC_EXHAUSTIVE_VUB.get(name) if unit == "lmul" else None})
    return rows


def check_ordering(rows: list[dict], band: float = BAND) -> list[dict]:
    """The paper's ordering on the errors against the unrounded product. Returns one dict per check."""
    err = {r["key"]: r["vs_exact"]["mean"] for r in rows}
    checks = []
    for mode in MODES:
        l3, e5 = err[f"lmul-{mode}-k3"], err["fmul-e5m2"]
        checks.append({"name": f"L-Mul {mode} k=3 more precise than E5M2 multiply", "passed": l3 < e5,
                       "detail": f"{l3:.4f} < {e5:.4f}"})
        l4, e4 = err[f"lmul-{mode}-k4"], err["fmul-e4m3"]
        ratio = l4 / e4
        checks.append({"name": f"L-Mul {mode} k=4 comparable to E4M3 multiply (ratio within [1/{band}, {band}])",
                       "passed": 1 / band <= ratio <= band, "detail": f"{l4:.4f} / {e4:.4f} = {ratio:.3f}"})
    return checks


def _fmt_spec(v):
    return "" if v is None else f"{v:.3f}"


def markdown(payload: dict) -> str:
    p = payload
    lines = [
        "# L-Mul error vs exact FP8 multiplication",
        "",
        f"Generated {p['date']} by `{p['command']}` (wall time {p['wall_s']:.1f} s); numpy {p['versions']['numpy']}, "
        f"ml_dtypes {p['versions']['ml_dtypes']}, Python {p['versions']['python']}.",
        "",
        f"## Random operands: x, y ~ N(0,1) (float64), {p['pairs']} pairs, seed {p['seed']}",
        "",
        "L-Mul rows: operands rounded RNE to e8m{k} (8 exponent bits, bias 127, so nothing under- or overflows), "
        "then `sw_model.lmul.golden.lmul`. FMul rows: operands rounded RNE to the FP8 format, `sw_model.lmul.golden.fmul` "
        "(product rounded RNE, subnormals kept, saturating). 'Inputs' rows: the exact float64 product of the "
        "FP8-rounded operands, i.e. input rounding only.",
        "",
        "Mean relative error |p - ref| / |ref| against the exact product of the rounded operands and against the "
        "exact product of the unrounded inputs (± one standard error). 'Spec' = the sanity numbers of "
        "ALGORITHMS.md section 1 (1e6 pairs, integer-add L-Mul; the spec does not say which reference its L-Mul "
        "numbers use, its FP8 numbers are against the unrounded product).",
        "",
        "| row | operand format | vs rounded operands | vs unrounded inputs | spec | flushed / saturated |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in p["random"]:
        lines.append(f"| {r['label']} | {r['format']} | {r['vs_rounded']['mean']:.4f} | "
                     f"{r['vs_exact']['mean']:.4f} ± {r['vs_exact']['se']:.4f} | {_fmt_spec(r['spec'])} | "
                     f"{r['flushed_to_zero']} / {r['saturated']} |")
    if p["exhaustive"]:
        lines += [
            "",
            "## Exhaustive FP8: all normal x normal pairs with exact product in [min normal, max finite]",
            "",
            "Relative error against the exact product of the two codes. 'VUB' = arXiv 2412.18948 Tab. IV (all FP8 "
            "pairs, their own bit-level L-Mul; pair domain and carry handling differ, orientation only).",
            "",
            "| unit | pairs | mean rel. error | max rel. error | VUB mean | flushed to 0 |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in p["exhaustive"]:
            lines.append(f"| {r['label']} | {r['pairs']} | {r['mean']:.4f} | {r['max']:.4f} | {_fmt_spec(r['vub'])} "
                         f"| {r['flushed_to_zero']} |")
    lines += ["", "## The paper's ordering (errors against the unrounded product)", ""]
    for c in p["checks"]:
        lines.append(f"- {'PASS' if c['passed'] else 'FAIL'}: {c['name']}: {c['detail']}")
    lines.append("")
    return "\n".join(lines)


def run(pairs: int, seed: int, exhaustive: bool = True) -> dict:
    t0 = time.perf_counter()
    rows = random_rows(pairs, seed)
    ex = exhaustive_rows() if exhaustive else []
    checks = check_ordering(rows)
    return {"pairs": pairs, "seed": seed, "band": BAND,
            "lmul_formats": {k: lmul_format_name(k) for k in K_VALUES},
            "random": rows, "exhaustive": ex, "checks": checks, "wall_s": time.perf_counter() - t0}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=200_000, help="random pairs (default 200000)")
    parser.add_argument("--seed", type=int, default=1, help="numpy default_rng seed (default 1)")
    parser.add_argument("--out", default="docs/results", help="output directory (default docs/results)")
    parser.add_argument("--no-exhaustive", action="store_true", help="skip the exhaustive FP8 part")
    args = parser.parse_args(argv)
    if args.pairs < 2:
        parser.error(f"--pairs: got {args.pairs}, allowed: an integer >= 2")

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    payload = run(args.pairs, args.seed, not args.no_exhaustive)
    payload = {"command": command, "date": date,
               "versions": {"numpy": np.__version__, "ml_dtypes": metadata.version("ml_dtypes"),
                            "python": platform.python_version()},
               **payload}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "lmul_error.json").write_text(json.dumps(payload, indent=2) + "\n")
    md = markdown(payload)
    (out / "lmul_error.md").write_text(md)
    print(md)
    for c in payload["checks"]:
        print(f"{'PASS' if c['passed'] else 'FAIL'}: {c['name']}: {c['detail']}")
    return 0 if all(c["passed"] for c in payload["checks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
