"""The overview's sections, one module per kind (``common``: what they share)."""
