"""Fuzzed configs (hypothesis): every config class in sw_model.registry.UNITS, built from a preset's fields with
some replaced by junk (wrong types, huge or negative numbers, odd strings, lists, tables), gives either a config or
a ConfigError whose message is one line naming a field; never another exception. The same through TOML files and
`hwgen generate`: exit status 2, one line on stderr, no traceback, no output file."""
import dataclasses
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwgen.cli import main
from sw_model.config import ConfigError, config_to_dict
from sw_model.registry import PRESETS, UNITS, config_from_dict

BASES = {unit: next(c for c in PRESETS.values() if c.unit == unit) for unit in UNITS}
JUNK = st.one_of(st.integers(-2 ** 70, 2 ** 70), st.integers(-3, 70), st.floats(allow_nan=True), st.booleans(),
                 st.none(), st.text(max_size=6), st.sampled_from(["e4m3", "int8", "fp16", "bf16", "mx", "", "e9m9"]),
                 st.lists(st.integers(-3, 300), max_size=4), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                           max_size=2))


def fields_of(unit):
    return [f.name for f in dataclasses.fields(UNITS[unit])]


@st.composite
def fuzzed(draw, unit):
    d = config_to_dict(BASES[unit])
    names = fields_of(unit)
    for name in draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)):
        d[name] = draw(JUNK)
    if draw(st.integers(0, 9)) == 0:
        d[draw(st.text(min_size=1, max_size=5))] = 1                 # an unknown field now and then
    return d


def check_message(message: str, d: dict):
    assert "\n" not in message and ": " in message, message
    named = message.split(":")[0]
    assert named in d or named in ("unit", d["unit"]) or any(named.startswith(k) for k in d), message


@pytest.mark.parametrize("unit", sorted(UNITS))
@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_fields_give_a_config_or_a_config_error(unit, data):
    d = data.draw(fuzzed(unit))
    try:
        cfg = config_from_dict(d)
    except ConfigError as e:
        check_message(str(e), d)
        return
    assert cfg.unit == unit


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f'"{k}" = {toml_value(x)}' for k, x in v.items()) + "}"
    return str(v)


@settings(max_examples=25, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(unit=st.sampled_from(sorted(u for u in UNITS if u != "system")), data=st.data())
def test_cli_rejects_a_fuzzed_toml_with_exit_2_and_one_line(unit, data, tmp_path_factory, capsys):
    d = {k: v for k, v in data.draw(fuzzed(unit)).items() if v is not None}     # TOML has no null
    try:
        config_from_dict(d)
        return                                                                 # valid: not this test's case
    except ConfigError:
        pass
    folder = tmp_path_factory.mktemp("fuzz")
    toml = folder / "bad.toml"
    toml.write_text("".join(f'"{k}" = {toml_value(v)}\n' for k, v in d.items()))
    out = folder / "out"
    capsys.readouterr()
    assert main(["generate", str(toml), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwgen: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("text, message", [
    ("unit = ", "is not valid TOML"),
    ('unit = "lmul"\nfmt = "e4m3"\nfmt = "e5m2"\n', "is not valid TOML"),
    ('unit = "nope"\n', "unit: got 'nope', allowed: "),
    ('unit = "lmul"\nname = "1bad"\n', "name: got '1bad', allowed: a letter then"),
])
def test_cli_rejects_broken_toml_files(text, message, tmp_path, capsys):
    toml = tmp_path / "x.toml"
    toml.write_text(text)
    assert main(["generate", str(toml), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "out").exists()
