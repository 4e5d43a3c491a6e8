"""The sampling policies in the core (issue 21): which labels a class-conditional model is sampled with
(nfzoo.flows.generation.sampling_labels: `nfzoo sample`, the sample metrics, the heads' labelled data sets) and
which oracle the sample metrics use by default (nfzoo.evaluation.oracle.default_oracle: `nfzoo eval`,
nfzoo.evaluation.metrics.evaluate_samples)."""
import math
from types import SimpleNamespace

import pytest
import torch

import nfzoo
from nfzoo.errors import UsageError
from nfzoo.evaluation.oracle import default_oracle
from nfzoo.flows.generation import constant_labels, cycle_labels, per_class_labels, sampling_labels


def _model(num_classes):
    return SimpleNamespace(num_classes=num_classes)


# --------------------------------------------------------------------------------------- labels
def test_a_conditional_model_draws_every_class_in_turn_by_default():
    labels, total, nrow = sampling_labels(_model(10))
    assert total == 64 and nrow == 8
    assert torch.equal(labels(0, 64), cycle_labels(10)(0, 64))
    assert torch.equal(labels(0, 23), torch.arange(23) % 10)
    labels, total, nrow = sampling_labels(_model(3), 10)
    assert total == 10 and nrow == math.ceil(math.sqrt(10)) == 4
    assert torch.bincount(labels(0, 10)).tolist() == [4, 3, 3]   # balanced: the first n % C get one more


def test_one_label_and_a_row_per_class():
    labels, total, nrow = sampling_labels(_model(10), 5, label=7)
    assert (total, nrow) == (5, 3) and torch.equal(labels(0, 5), constant_labels(7)(0, 5))
    assert labels(0, 5).tolist() == [7] * 5
    labels, total, nrow = sampling_labels(_model(4), 3, per_class=True)
    assert (total, nrow) == (12, 3) and torch.equal(labels(0, 12), per_class_labels(3)(0, 12))
    assert labels(0, 12).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert sampling_labels(_model(4), per_class=True)[1:] == (32, 8)      # 8 per class by default
    assert sampling_labels(_model(4), per_class=True, label=2).total == 32   # --per-class wins


def test_an_unconditional_model_draws_no_labels():
    assert sampling_labels(_model(None)) == (None, 64, 8)
    assert sampling_labels(_model(None), 1) == (None, 1, 1)
    assert sampling_labels(object(), 2).labels is None   # no num_classes at all


def test_labels_that_a_model_cannot_take_are_usage_errors():
    with pytest.raises(UsageError, match="m is unconditional: --label and --per-class"):
        sampling_labels(_model(None), label=0, name="m")
    with pytest.raises(UsageError, match="this model is unconditional"):
        sampling_labels(_model(None), per_class=True)
    with pytest.raises(UsageError, match=r"--label must be in \[0, 9\], got 10"):
        sampling_labels(_model(10), label=10)


def test_the_sample_metrics_draw_the_same_labels_as_sample(monkeypatch):
    """evaluate_samples samples a conditional model with sampling_labels' default rule."""
    import nfzoo.evaluation.metrics as metrics
    from nfzoo.evaluation.oracle import OracleNet

    class Drawn(Exception):
        pass

    def spy(model, n, y=None, *args):
        raise Drawn(y(0, n))

    monkeypatch.setattr("nfzoo.flows.generation.generate", spy)
    monkeypatch.setattr(metrics, "dataset_features", lambda *a, **k: None)
    model = nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=1, steps=1, hidden=8, num_classes=3)
    ds = type("DS", (), {"image_shape": (1, 8, 8), "name": "digits", "__len__": lambda self: 0})()
    with pytest.raises(Drawn) as drawn:
        metrics.evaluate_samples(model, ds, 7, oracle=OracleNet((1, 8, 8), num_classes=3))
    assert torch.equal(drawn.value.args[0], sampling_labels(model, 7).labels(0, 7))
    assert drawn.value.args[0].tolist() == [0, 1, 2, 0, 1, 2, 0]


# --------------------------------------------------------------------------------------- oracle
def test_mnist5k_defaults_to_the_zoos_oracle_even_when_the_zoo_is_not_loaded(monkeypatch, fresh_registry):
    monkeypatch.setenv("NFZOO_LOAD_PLUGINS", "")
    fresh_registry.reset()
    assert default_oracle("mnist5k") == "oracle-mnist5k"
    assert default_oracle("digits") is None and default_oracle(None) is None and default_oracle("") is None


def test_a_plugins_oracle_entry_is_the_default_for_its_data_set(monkeypatch, fake_plugin):
    monkeypatch.setenv("NFZOO_LOAD_PLUGINS", "digitsoracle")
    fake_plugin("digitsoracle", """
        import nfzoo

        @nfzoo.hookimpl
        def register_pretrained(register):
            register("oracle-digits", "/nowhere", kind="oracle", dataset="digits")
    """)
    assert default_oracle("digits") == "oracle-digits"
    assert default_oracle("cifar10") is None


def test_evaluate_samples_takes_the_default_oracle_of_the_data_set(monkeypatch, fresh_registry):
    """Without an oracle, evaluate_samples on mnist5k goes for oracle-mnist5k (here: not installed, so
    it says so), and on a data set without a default it asks for one, as before."""
    from nfzoo.data import ArrayDataset
    from nfzoo.evaluation.metrics import evaluate_samples

    monkeypatch.setenv("NFZOO_LOAD_PLUGINS", "")
    fresh_registry.reset()
    model = nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=1, steps=1, hidden=8)
    images, labels = torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.arange(4)
    with pytest.raises(UsageError, match="oracle-mnist5k"):
        evaluate_samples(model, ArrayDataset(images, labels, 10, "mnist5k"), 4)
    with pytest.raises(UsageError, match="the oracle features need an oracle"):
        evaluate_samples(model, ArrayDataset(images, labels, 10, "digits"), 4)
