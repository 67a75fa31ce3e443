"""Generic cell rate algorithm (GCRA) rate limiters."""
