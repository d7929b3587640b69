"""UniFormerV2 models: config, blocks, arming, fusion, head, checkpoint conversion, FLOPs."""

from uv2.models.config import (
    VARIANTS,
    VIT_PRESETS,
    ConfigError,
    ModelConfig,
    ViTConfig,
    model_config,
    parse_layers,
    vit_config,
)
from uv2.models.uniformerv2 import UniFormerV2, build_model

__all__ = [
    "VIT_PRESETS", "VARIANTS", "ConfigError", "ModelConfig", "ViTConfig", "UniFormerV2", "build_model",
    "model_config", "parse_layers", "vit_config",
]
