"""The one error a stage config raises (its message names the file and the key)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A stage config that cannot be used; the message names the file (or ``overrides``) and the key."""
