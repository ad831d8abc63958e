"""Quantization tools: chip memory fit (``s2emu fit``), precision sweeps (``s2emu sweep``)."""
