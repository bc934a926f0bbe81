"""radbank: one node of a network of research repositories of medical images and dose data."""

__version__ = "0.1.0"
