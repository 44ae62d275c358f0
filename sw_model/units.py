"""The unit families' config classes and named presets: everything an engine of the accelerator top can be.

Families never import this module; it imports them (`sw_model.registry` adds the accelerator top itself)."""
from __future__ import annotations

from sw_model.attention.config import PRESETS_ATTENTION, AttentionConfig
from sw_model.bitmod.config import PRESETS_BITMOD, BitModConfig
from sw_model.config import config_from_dict
from sw_model.lmul.config import PRESETS_LMUL, FMulConfig, LMulConfig, LMulDotConfig
from sw_model.snn.config import PRESETS_SNN, SNNCoreConfig
from sw_model.snn.sdsa import PRESETS_SDSA, SDSAConfig
from sw_model.sparse.config import PRESETS_SPARSE, SparseChainConfig

UNITS: dict[str, type] = {cls.unit: cls for cls in (LMulConfig, FMulConfig, LMulDotConfig, SNNCoreConfig, SDSAConfig,
                                                    BitModConfig, SparseChainConfig, AttentionConfig)}
PRESETS: dict[str, object] = {**PRESETS_LMUL, **PRESETS_SNN, **PRESETS_SDSA, **PRESETS_BITMOD, **PRESETS_SPARSE,
                              **PRESETS_ATTENTION}


def unit_config_from_dict(d: dict):
    """A unit config from a dict with a `unit` key (any family but the accelerator top)."""
    return config_from_dict(d, UNITS)
