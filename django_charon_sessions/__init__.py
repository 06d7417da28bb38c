"""Django sessions in Redis that know which sessions belong to which user."""

from __future__ import annotations

__version__ = "0.1.0"
