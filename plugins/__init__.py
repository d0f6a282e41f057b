"""Loket's built-in plugins, each registered under the entry-point group ``loket.plugins``."""
