"""Triggers API: durable event ingestion with a pull inbox and push delivery."""

from __future__ import annotations

__version__ = "0.1.0"
