"""agents.yaml: schema, loading and checks."""

from app.config.loader import LoadedConfig, find_config_path, load_config

__all__ = ["LoadedConfig", "find_config_path", "load_config"]
