"""The paper network in snnTorch and its training loop."""
import nir
import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

from emu.apps.gesture.data import SynthConfig, load_dvsgesture, write_synthetic_dataset
from emu.apps.gesture.model import SumPool2d, gesture_net, predict
from emu.apps.gesture.train import evaluate, train
from emu.cli import main


@pytest.fixture(scope="module")
def synthetic_frames(tmp_path_factory):
    """44 training samples (4 per class), 100 ticks each."""
    root = tmp_path_factory.mktemp("dvs")
    write_synthetic_dataset(root, n_train_per_class=4, n_test_per_class=1, seed=0,
                            config=SynthConfig(duration_ms=120))
    dataset = load_dvsgesture(root, train=True, ticks=100)
    return [dataset[i] for i in range(len(dataset))]


def test_architecture_matches_the_paper():
    net = gesture_net()
    layers = dict(net.layers.named_children())
    convs = [layers[n] for n in ("conv1", "conv2", "conv3")]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (2, 16, (5, 5), (2, 2), (1, 1)), (16, 16, (3, 3), (1, 1), (1, 1)), (16, 8, (3, 3), (1, 1), (1, 1))]
    assert (layers["fc1"].in_features, layers["fc1"].out_features) == (72, 256)
    assert (layers["fc2"].in_features, layers["fc2"].out_features) == (256, 11)
    assert all(m.bias is None for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    neurons = [m for m in net.modules() if isinstance(m, snn.Leaky)]
    assert len(neurons) == 5
    for neuron in neurons:
        assert neuron.beta.item() == pytest.approx(0.93) and neuron.threshold.item() == 1.0
        assert neuron.reset_mechanism == "subtract"
    assert list(layers) == ["conv1", "lif1", "conv2", "lif2", "pool2", "conv3", "lif3", "pool3",
                            "flatten", "fc1", "lif4", "fc2", "lif5"]


def test_forward_shapes_and_recording():
    torch.manual_seed(0)
    net = gesture_net()
    x = (torch.rand(6, 3, 2, 32, 32) < 0.05).float()
    spikes, rec = net(x, record=True)
    assert spikes.shape == (6, 3, 11)
    shapes = {name: tuple(r["spk"].shape) for name, r in rec.items()}
    assert shapes == {"lif1": (6, 3, 16, 15, 15), "lif2": (6, 3, 16, 15, 15), "lif3": (6, 3, 8, 7, 7),
                      "lif4": (6, 3, 256), "lif5": (6, 3, 11)}
    assert all(r["mem"].shape == r["spk"].shape for r in rec.values())
    assert torch.equal(rec["lif5"]["spk"], spikes) and torch.equal(net(x), spikes)  # state is reset
    assert set(torch.unique(spikes).tolist()) <= {0.0, 1.0}


def test_sum_pool_is_an_exact_sum():
    counts = torch.randint(0, 5, (2, 3, 15, 15)).float()
    pooled = SumPool2d(2)(counts)
    expected = counts[..., :14, :14].reshape(2, 3, 7, 2, 7, 2).sum((3, 5))
    assert pooled.shape == (2, 3, 7, 7) and torch.equal(pooled, expected)
    values = torch.randn(2, 3, 8, 8)
    assert torch.allclose(SumPool2d(2)(values), values.reshape(2, 3, 4, 2, 4, 2).sum((3, 5)))


def test_prediction_is_the_largest_spike_count():
    spikes = torch.zeros(4, 2, 11)
    spikes[:, 0, 3] = 1
    spikes[:2, 0, 5] = 1
    assert predict(spikes).tolist() == [3, 0]  # no spikes at all: class 0


def test_training_beats_chance(synthetic_frames):
    torch.manual_seed(0)
    net = gesture_net()
    history = train(net, synthetic_frames, epochs=5, batch_size=11, lr=5e-3, progress=False, threads=1)
    assert len(history) == 5 and history[-1]["loss"] < history[0]["loss"]
    assert evaluate(net, synthetic_frames) > 2 / 11


def test_checkpoint_resume_continues_the_same_run(synthetic_frames, tmp_path):
    data = [(frames[:20], label) for frames, label in synthetic_frames[:22]]
    torch.manual_seed(1)
    straight = gesture_net()
    start = {k: v.clone() for k, v in straight.state_dict().items()}
    full = train(straight, data, data, epochs=2, batch_size=11, progress=False, threads=1)

    resumed = gesture_net()
    resumed.load_state_dict(start)
    ckpt = tmp_path / "ckpt.pt"
    first = train(resumed, data, data, epochs=1, batch_size=11, checkpoint=ckpt, progress=False, threads=1)
    assert torch.load(ckpt, weights_only=False)["epoch"] == 1
    fresh = gesture_net()  # a new process would start from a new model and optimizer
    history = train(fresh, data, data, epochs=2, batch_size=11, checkpoint=ckpt, progress=False, threads=1)
    assert len(history) == 2 and history[0] == first[0]
    assert history[1]["loss"] == pytest.approx(full[1]["loss"], rel=1e-5)
    for key, value in straight.state_dict().items():
        assert torch.allclose(fresh.state_dict()[key], value, atol=1e-6), key
    assert train(fresh, data, epochs=2, batch_size=11, checkpoint=ckpt, progress=False, threads=1) == history  # nothing left


def test_command_line_trains_and_writes_nir(tmp_path):
    out = tmp_path / "net.nir"
    assert main(["train", "--root", str(tmp_path), "--synthetic", "1", "--epochs", "1", "--ticks", "20",
                 "--batch-size", "11", "--checkpoint", str(tmp_path / "c.pt"), "--nir", str(out),
                 "--quiet", "--threads", "1"]) == 0
    history = torch.load(tmp_path / "c.pt", weights_only=False)["history"]
    assert len(history) == 1 and 0 <= history[0]["test_acc"] <= 1
    graph = nir.read(out)
    assert graph.nodes["conv1"].weight.shape == (16, 2, 5, 5)
    assert np.all(np.isfinite(graph.nodes["fc2"].weight))
