"""The built-in templates, installed as package data (read with importlib.resources)."""
