"""Stand-in for fvcore.nn.weight_init (the only part the official SEEM modules import)."""
