"""A user's snnTorch model, as `s2emu export emu/examples/snntorch_net.py:net` takes one: a plain
Linear -> Leaky -> Linear -> Leaky chain for the 512 inputs of spikes.json (2 x 16 x 16 flattened),
per-neuron beta in the hidden layer; seeded weights (a trained model would load its state dict
with --state-dict)."""
import snntorch as snn
import torch
from torch import nn

torch.manual_seed(2026)
net = nn.Sequential(
    nn.Linear(512, 64),
    snn.Leaky(beta=torch.linspace(0.8, 0.95, 64), threshold=1.0, init_hidden=True),
    nn.Linear(64, 10),
    snn.Leaky(beta=0.9, threshold=1.0, init_hidden=True, output=True),
)
with torch.no_grad():
    net[0].weight.mul_(4.0)  # the inputs spike sparsely: drive enough that both layers fire
    net[2].weight.mul_(3.0)
