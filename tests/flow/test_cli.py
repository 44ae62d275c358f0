"""The command line and config loading: outputs, manifests, and one clear error per bad input with no partial
files left behind."""
import json

import pytest

from hwgen.cli import main
from sw_model.config import ConfigError
from sw_model.lmul.config import LMulConfig, LMulDotConfig
from sw_model.registry import PRESETS, config_from_dict, load_config


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_preset_writes_verilog_and_manifest(tmp_path, capsys):
    code, out, _ = run(capsys, "generate", "lmul-e4m3", "-o", str(tmp_path))
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lmul_e4m3.json", "lmul_e4m3.v"]
    m = json.loads((tmp_path / "lmul_e4m3.json").read_text())
    assert m["top"] == "lmul_e4m3" and "module lmul_e4m3(" in (tmp_path / "lmul_e4m3.v").read_text()
    assert m["config"] == {"unit": "lmul", "fmt": "e4m3", "mode": "adder", "overflow": "saturate", "pipeline": 1}
    ports = {p["name"]: p for p in m["ports"]}
    assert ports["i__payload"] == {"name": "i__payload", "dir": "in", "width": 16, "signed": False}
    assert ports["o__payload"]["dir"] == "out" and ports["o__payload"]["width"] == 8
    assert {"clk", "rst", "i__valid", "i__ready", "o__valid", "o__ready"} <= set(ports)
    s_in = next(s for s in m["streams"] if s["name"] == "i")
    assert s_in["valid"] == "i__valid" and s_in["ready"] == "i__ready"
    assert [(f["name"], f["offset"], f["width"]) for f in s_in["fields"]] == [("a", 0, 8), ("b", 8, 8)]
    assert m["latency"] == 1 and m["ii"] == 1 and m["tools"]["amaranth"].startswith("0.5")


def test_generate_is_reproducible(tmp_path, capsys):
    run(capsys, "generate", "fmul-e4m3", "-o", str(tmp_path / "a"))
    run(capsys, "generate", "fmul-e4m3", "-o", str(tmp_path / "b"))
    text = (tmp_path / "a" / "fmul_e4m3.v").read_text()
    assert text == (tmp_path / "b" / "fmul_e4m3.v").read_text()
    assert "src =" not in text and str(tmp_path) not in text


def test_dot_manifest_describes_array_fields(tmp_path, capsys):
    run(capsys, "generate", "lmuldot-e5m2x8-bf16", "-o", str(tmp_path))
    m = json.loads((tmp_path / "lmuldot_e5m2x8_bf16.json").read_text())
    fields = {f["name"]: f for f in m["streams"][0]["fields"]}
    assert fields["a"] == {"name": "a", "offset": 0, "width": 64, "signed": False, "count": 8, "elem_width": 8}
    assert fields["b"]["offset"] == 64 and fields["last"]["offset"] == 128
    assert m["streams"][1]["fields"] == [{"name": "sum", "offset": 0, "width": 16, "signed": False}]
    assert (m["latency"], m["ii"]) == (21, 5)          # pipeline 16 + acc_stages 5; one beat per 5 cycles


def test_generate_from_toml(tmp_path, capsys):
    cfg = tmp_path / "dot.toml"
    cfg.write_text('unit = "lmuldot"\nname = "dot3"\nfmt = "e3m4"\nacc_fmt = "fp16"\nlanes = 3\n')
    code, _, _ = run(capsys, "generate", str(cfg), "-o", str(tmp_path / "out"))
    assert code == 0
    m = json.loads((tmp_path / "out" / "dot3.json").read_text())
    assert m["config"]["lanes"] == 3 and m["config"]["acc_fmt"] == "fp16"


BAD_TOML = [
    ('unit = "lmul"\nfmt = "e4m0"\n', "fmt: FloatFormat.man_bits: got 0, allowed: an integer from 1 to 23"),
    ('unit = "lmul"\nfmt = "e9m23"\n', "fmt: format: custom 'e9m23' has 33 bits"),
    ('unit = "lmuldot"\nlanes = 0\n', "lanes: got 0, allowed: an integer from 1 to 256"),
    ('unit = "lmul"\noverflow = "wrap"\n', "overflow: got 'wrap', allowed: saturate, inf"),
    ('unit = "lmul"\nmode = "mitchell"\n', "mode: got 'mitchell', allowed: adder, formula"),
    ('unit = "lmul"\nfmt = "e2m1"\noverflow = "inf"\n', "overflow: got 'inf', but fmt e2m1 has no Inf or NaN"),
    ('unit = "lmul"\npipline = 2\n', "pipline: unknown field for unit 'lmul', allowed: fmt, mode, overflow, pipeline"),
    ('unit = "conv"\n', "unit: got 'conv', allowed: lmul, fmul, lmuldot"),
    ('unit = "lmul"\nfmt = \n', "is not valid TOML"),
    ('unit = "lmuldot"\nfmt = "e4m3"\nacc_fmt = "e5m2"\n', "acc_fmt: got 'e5m2', allowed: a format that holds"),
    ('unit = "lmul"\nfmt = "int8"\n', "fmt: got 'int8', allowed: a minifloat format"),
    ('unit = "lmul"\npipeline = "2"\n', "pipeline: got '2', allowed: an integer from 0 to 4"),
]


@pytest.mark.parametrize("text,message", BAD_TOML)
def test_bad_config_one_clear_error_no_output(tmp_path, capsys, text, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    out_dir = tmp_path / "out"
    code, _, err = run(capsys, "generate", str(cfg), "-o", str(out_dir))
    assert code != 0
    assert message in err and err.startswith("hwgen: error: ") and err.count("\n") == 1
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_unknown_preset_and_missing_file(tmp_path, capsys):
    code, _, err = run(capsys, "generate", "lmul-e9m9", "-o", str(tmp_path))
    assert code != 0 and "config: got 'lmul-e9m9', allowed: a TOML file or a preset (lmul-e4m3" in err
    code, _, err = run(capsys, "generate", str(tmp_path / "none.toml"), "-o", str(tmp_path))
    assert code != 0 and "does not exist" in err
    assert list(tmp_path.iterdir()) == []


def test_every_preset_round_trips_through_dict():
    from sw_model.config import config_to_dict
    for name, cfg in PRESETS.items():
        assert config_from_dict(config_to_dict(cfg)) == cfg, name
    assert load_config("lmul-bf16") == ("lmul-bf16", LMulConfig(fmt="bf16"))


def test_config_errors_are_value_errors():
    with pytest.raises(ConfigError, match="lanes: got 300"):
        LMulDotConfig(lanes=300)
    assert issubclass(ConfigError, ValueError)


def test_formats_table(capsys):
    code, out, _ = run(capsys, "formats", "e4m3", "e5m2", "int8")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:4] == ["name", "bits", "exp_bits", "man_bits"]
    e4m3 = next(line for line in lines if line.startswith("e4m3 "))
    assert " 448 " in e4m3 and "0.015625" in e4m3 and "0.00195312" in e4m3


def test_every_subcommand_has_help(capsys):
    from hwgen.cli import build_parser
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        assert "usage: hwgen " + name in capsys.readouterr().out


def test_presets_lint_clean():
    """Every preset's Verilog passes verilator --lint-only -Wall with the documented waivers only."""
    import tempfile

    from hwgen.flow.generate import write_design
    from hwgen.flow.lint import lint
    with tempfile.TemporaryDirectory() as tmp:
        for name in PRESETS:
            v, _ = write_design(name, tmp)
            assert lint(v) == [], name


def test_output_that_is_an_existing_file_is_one_clear_line(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("keep me")
    assert main(["generate", "lmul-e4m3", "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert err == f"hwgen: error: -o/--output: got {str(target)!r}, an existing file; allowed: a directory " \
                  "(created if missing)\n"
    assert target.read_text() == "keep me"


def test_missing_simulator_is_one_clear_line(monkeypatch, capsys):
    import shutil
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "iverilog" else real(name, *a, **k))
    assert main(["test", "--sim", "icarus"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Icarus Verilog not found: run `apt-get install -y iverilog`" in err


def test_build_dir_and_cache_command(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HWGEN_BUILD_DIR", raising=False)
    cache = tmp_path / "cache"
    assert main(["--build-dir", str(cache), "generate", "lmul-e4m3", "-o", str(tmp_path / "out")]) == 0
    (cache / "models").mkdir(parents=True)
    (cache / "models" / "x.npz").write_bytes(b"\0" * 1000)
    capsys.readouterr()
    assert main(["--build-dir", str(cache), "cache"]) == 0
    assert capsys.readouterr().out.startswith(f"{cache.resolve()}: 1 files, 0.0 MB")
    assert main(["--build-dir", str(cache), "cache", "--clear"]) == 0
    assert "cleared" in capsys.readouterr().out and not any(cache.iterdir())
