"""The terminal app: page-by-page review of a case (``workbench app``)."""
