"""workbench: verify a leaked document trove page by page, offline."""

__version__ = "0.1.0"
