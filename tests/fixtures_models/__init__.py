"""Small model files built at test time (no downloads)."""
