"""edge-agent: an audience-aware signage daemon for small edge devices."""

__version__ = "0.1.0"
