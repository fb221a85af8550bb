"""examples/train_cnn.py: the digits CNN learns, checkpoints and resumes (needs scikit-learn)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("sklearn", reason="the digits dataset ships in scikit-learn (pip install -e '.[test]')")

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
sys.path.insert(0, EXAMPLES)

import train_cnn  # noqa: E402

import opdispatch as od  # noqa: E402


@pytest.mark.slow
def test_two_epochs_learn_and_resume_continues(tmp_path, capsys):
    ckpt = str(tmp_path / "digits.npz")
    acc = train_cnn.main(["--epochs", "2", "--save", ckpt, "--batch-norm"])
    assert acc > 0.85
    saved = od.load_checkpoint(ckpt)
    assert saved.metadata["epoch"] == 2 and saved.metadata["accuracy"] == acc
    assert set(saved.state) == {"conv1.mean", "conv1.var", "conv2.mean", "conv2.var"}
    assert type(saved.optimizer) is od.Adam and saved.optimizer.steps == 2 * 23
    resumed = train_cnn.main(["--epochs", "1", "--resume", ckpt, "--save", ckpt])
    assert od.load_checkpoint(ckpt).metadata["epoch"] == 3 and resumed > 0.85
    out = capsys.readouterr()
    assert "epoch   3: train loss" in out.out and "resumed" in out.err


@pytest.mark.slow
def test_zero_epochs_evaluates_the_checkpoint(tmp_path):
    ckpt = str(tmp_path / "d.npz")
    acc = train_cnn.main(["--epochs", "1", "--save", ckpt, "--optimizer", "sgd"])
    assert train_cnn.main(["--epochs", "0", "--resume", ckpt]) == pytest.approx(acc)


@pytest.mark.slow
def test_the_default_run_reaches_97_percent_held_out():
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, "train_cnn.py"), "--device", "numpy:0",
                           "--target", "0.97"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "final held-out accuracy" in proc.stdout
