"""The error rendering raises."""


class RenderError(Exception):
    """The edition cannot be rendered (no stories, a broken template, over a size limit)."""
