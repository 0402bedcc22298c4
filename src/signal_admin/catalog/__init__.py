"""Placeholder package; see the module docstrings inside."""
