"""The sample newsroom: articles, feeds and subscribers (package data)."""
