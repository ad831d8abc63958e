"""The regression-test kit for users' models (``docs/testing.md``): hypothesis strategies
(:mod:`emu.testing.strategies`)."""
