"""The default config and the commented config `briefcast init` writes (package data)."""
