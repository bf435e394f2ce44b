"""The error for a setting that cannot work (every module that reads settings raises it)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting that cannot work; the message names the variable."""
