"""DVS-gesture pipeline: synthetic data, the paper network, training, NIR export, PTQ."""
