"""One migration per schema change; `briefcast db revision -m "..."` writes the next one."""
