"""Adapters that expose lrnet models to other tools (optional dependencies, imported on demand)."""
