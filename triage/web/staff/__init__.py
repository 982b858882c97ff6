"""The staff pages under /staff."""
