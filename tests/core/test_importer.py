"""cnnviz-train import: a user's own PyTorch model -> a CnnViz weight file (core.importer), through the CLI."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from cnnviz_desktop.core import weights

ROOT = Path(__file__).resolve().parents[2]

HEADER = "import torch\nfrom torch import nn\nimport torch.nn.functional as F\n"

MODEL_003 = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 10, 3, padding=1), nn.ReLU(),
            nn.Conv2d(10, 10, 3, padding="same"), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.pool(self.features(x)).flatten(1)
"""

MODEL_BN = """
class BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 5, stride=2, padding=2)
        self.bn = nn.BatchNorm2d(6, eps=1e-3)
        self.act = nn.LeakyReLU(0.2)
        self.pool = nn.AvgPool2d(2)
        self.flat = nn.Flatten()
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(6 * 7 * 7, 16)
        self.bn1 = nn.BatchNorm1d(16)
        self.gelu = nn.GELU()
        self.out = nn.Linear(16, 10)

    def forward(self, x):
        x = self.pool(self.act(self.bn(self.conv(x))))
        x = self.drop(self.flat(x))
        return self.out(self.gelu(self.bn1(self.fc(x))))
"""

MODEL_NESTED = """
def make():
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.Tanh()),
        nn.Sequential(nn.Sequential(nn.MaxPool2d(2)), nn.Conv2d(4, 8, 3, stride=2), nn.Sigmoid()),
        nn.Sequential(nn.Flatten(), nn.Identity(), nn.Linear(8 * 6 * 6, 10, bias=False)),
    )
"""

MODEL_REORDERED = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 13 * 13, 10)
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.fc(self.relu(self.pool(self.conv(x))).flatten(1))
"""

MODEL_FUNCTIONAL = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 13 * 13, 10)

    def forward(self, x):
        return self.fc(self.pool(F.relu(self.conv(x))).flatten(1))
"""

MODEL_UNSUPPORTED = """
class Odd(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.pool = nn.MaxPool2d(2, padding=1)
        self.line = nn.Conv1d(4, 4, 3)
        self.rnn = nn.LSTM(4, 10)
        self.fc = nn.Linear(10, 10)
        self.soft = nn.Softmax(dim=1)

    def forward(self, x):
        return self.soft(self.fc(x))
"""

MODEL_32 = """
class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                                  nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 5 * 5, 10))

    def forward(self, x):
        return self.body(x)
"""

MODEL_12 = """
model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 13 * 13, 12))
"""


def _user_module(tmp_path: Path, name: str, source: str):
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + textwrap.dedent(source), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _save_state(model: torch.nn.Module, path: Path) -> Path:
    torch.save(model.state_dict(), path)
    return path


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]))
    return subprocess.run([sys.executable, "-m", "cnnviz_desktop.cli.train", "import", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _refused(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def _same_outputs(user: torch.nn.Module, loaded: weights.LoadedModel) -> float:
    x = torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return float((user.eval()(x).reshape(16, -1) - loaded.model(x)).abs().max())


def test_a_model_of_003s_shape_imports_and_loads_with_the_same_outputs(tmp_path):
    module = _user_module(tmp_path, "net003", MODEL_003)
    user = module.Net()
    pt = _save_state(user, tmp_path / "net003.pt")
    out = tmp_path / "models" / "net003.safetensors"
    result = _cli(tmp_path, "net003:Net", "--weights", str(pt), "--out", str(out), "--name", "my003")
    assert result.returncode == 0, result.stderr
    loaded = weights.load(out)
    assert loaded.name == "my003"
    assert loaded.arch.spec.startswith("c10k3p1-relu-c10k3p1-relu-max2-gap")
    assert _same_outputs(user, loaded) < 1e-5
    assert "imported from net003:Net, net003.pt, sha256 " + weights.sha256_of(pt) == loaded.card["source"]


def test_batch_norm_model_with_its_statistics_imports_exactly(tmp_path):
    module = _user_module(tmp_path, "bnnet", MODEL_BN)
    torch.manual_seed(0)
    user = module.BNNet()
    for bn in (user.bn, user.bn1):  # trained-looking statistics, so folding them matters
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    pt = _save_state(user, tmp_path / "bn.pt")
    out = tmp_path / "bn.safetensors"
    result = _cli(tmp_path, "bnnet:BNNet", "--weights", str(pt), "--out", str(out))
    assert result.returncode == 0, result.stderr
    loaded = weights.load(out)
    assert loaded.arch.spec == "c6k5s2p2-bn-lrelu0.2-avg2-flat-drop0.3-fc16-bn-gelu-fc10"
    assert _same_outputs(user, loaded) < 1e-4


def test_nested_sequentials_from_a_file_path_factory_are_flattened(tmp_path):
    module = _user_module(tmp_path, "nested", MODEL_NESTED)
    user = module.make()
    pt = _save_state(user, tmp_path / "nested.pt")
    out = tmp_path / "nested.safetensors"
    result = _cli(tmp_path, f"{tmp_path / 'nested.py'}:make", "--weights", str(pt), "--out", str(out))
    assert result.returncode == 0, result.stderr
    loaded = weights.load(out)
    assert loaded.arch.spec == "c4k3-tanh-max2-c8k3s2-sigmoid-fc10"
    assert loaded.name == "make"
    assert _same_outputs(user, loaded) < 1e-5


@pytest.mark.parametrize("source", [MODEL_REORDERED, MODEL_FUNCTIONAL], ids=["reordered", "functional"])
def test_a_forward_that_is_not_its_modules_in_order_is_refused(tmp_path, source):
    module = _user_module(tmp_path, "custom", source)
    pt = _save_state(module.Net(), tmp_path / "custom.pt")
    out = tmp_path / "custom.safetensors"
    message = _refused(_cli(tmp_path, "custom:Net", "--weights", str(pt), "--out", str(out)))
    assert "forward() is not its modules run in order" in message
    assert not out.exists()


def test_unsupported_modules_are_all_listed_with_the_supported_set(tmp_path):
    module = _user_module(tmp_path, "odd", MODEL_UNSUPPORTED)
    pt = _save_state(module.Odd(), tmp_path / "odd.pt")
    message = _refused(_cli(tmp_path, "odd:Odd", "--weights", str(pt), "--out", str(tmp_path / "o.safetensors")))
    assert "pool: MaxPool2d (padding=1: only padding 0)" in message
    assert "line: Conv1d" in message
    assert "rnn: LSTM" in message
    assert "soft: Softmax (the network must end with its 10 logits: remove the softmax" in message
    assert "conv: Conv2d" not in message
    assert "Supported: Conv2d" in message


def test_a_model_for_32x32_inputs_is_refused_naming_the_input(tmp_path):
    module = _user_module(tmp_path, "lenet", MODEL_32)
    pt = _save_state(module.LeNet(), tmp_path / "lenet.pt")
    message = _refused(_cli(tmp_path, "lenet:LeNet", "--weights", str(pt), "--out", str(tmp_path / "l.safetensors")))
    assert "does not accept a 1x1x28x28 input" in message and "28x28" in message


def test_a_model_with_12_outputs_is_refused_naming_the_output(tmp_path):
    module = _user_module(tmp_path, "twelve", MODEL_12)
    pt = _save_state(module.model, tmp_path / "twelve.pt")
    message = _refused(_cli(tmp_path, "twelve:model", "--weights", str(pt), "--out", str(tmp_path / "t.safetensors")))
    assert "gives 12 outputs" in message and "exactly 10" in message


def test_a_full_pickled_model_and_bad_targets_are_refused(tmp_path):
    module = _user_module(tmp_path, "net003", MODEL_003)
    pickled = tmp_path / "whole.pt"
    torch.save(module.Net(), pickled)
    out = str(tmp_path / "w.safetensors")
    message = _refused(_cli(tmp_path, "net003:Net", "--weights", str(pickled), "--out", out))
    assert "state dict" in message and "torch.save(model.state_dict()" in message
    state = _save_state(module.Net(), tmp_path / "s.pt")
    assert "MODULE:ATTR" in _refused(_cli(tmp_path, "net003", "--weights", str(state), "--out", out))
    assert "no attribute 'Nett'" in _refused(_cli(tmp_path, "net003:Nett", "--weights", str(state), "--out", out))
    assert "not found" in _refused(_cli(tmp_path, "nosuchmodule:Net", "--weights", str(state), "--out", out))


def test_import_help_says_it_runs_the_users_code(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "cnnviz_desktop.cli.train", "import", "--help"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "runs your own Python code" in " ".join(result.stdout.split())
