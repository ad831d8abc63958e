"""Applications built on the core and the validator: the DVS-gesture pipeline (data, model,
training, export, PTQ, QAT), the precision sweep and the demo."""
