"""Stand-in for the parts of detectron2 that the official SEEM v1 modules import."""
