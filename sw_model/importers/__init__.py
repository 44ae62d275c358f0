"""Model importers: float models from exchange formats, run on numpy with per-layer numerics."""
