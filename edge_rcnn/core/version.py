"""The package version, written into every exported file's metadata."""

__version__ = "0.1.0"
