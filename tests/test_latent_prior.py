"""The fitted latent prior (nfzoo.flows.latent_prior, `nfzoo refit-prior`), the result files of `nfzoo eval --out`,
the recognisable share, and fine-tuning from a pretrained model (`nfzoo train --init`)."""
import json
import math

import numpy as np
import pytest
import torch
from torch.distributions import LowRankMultivariateNormal
from typer.testing import CliRunner

import nfzoo
from nfzoo.data import ArrayDataset
from nfzoo.errors import ConfigError, UsageError
from nfzoo.evaluation.results import mean_sd, write_result
from nfzoo.flows.latent_prior import fit_latent_prior
from nfzoo.flows.priors import LatentMixture
from nfzoo_cli.app import build_app

runner = CliRunner()
SHAPE = (1, 8, 4)


def tiny(**kw):
    torch.manual_seed(0)
    return nfzoo.create_model("glow", image_shape=SHAPE, levels=1, steps=1, hidden=4, **kw)


def labelled(n=60, classes=3, seed=0):
    g = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = (g.random((n, *SHAPE)) * 0.3 + y[:, None, None, None] * 0.3).clip(0, 1)
    return ArrayDataset(torch.as_tensor((x * 255).astype(np.uint8)), torch.as_tensor(y), classes, name="toy")


# ------------------------------------------------------------------------------------ the prior
def test_an_unfitted_mixture_is_the_standard_normal():
    p = LatentMixture((2, 3), components=4, rank=2)
    z = torch.randn(5, 2, 3)
    torch.testing.assert_close(p.log_prob(z), nfzoo.flows.priors.StandardNormal((2, 3)).log_prob(z))


def test_log_prob_is_the_mixture_of_low_rank_gaussians():
    torch.manual_seed(0)
    p = LatentMixture((6,), components=2, rank=2)
    p.loc.normal_()
    p.cov_factor.normal_()
    p.cov_diag.uniform_(0.5, 2.0)
    p.logits.copy_(torch.tensor([0.3, -0.2]))
    z = torch.randn(7, 6)
    comps = [LowRankMultivariateNormal(p.loc[k], p.cov_factor[k], p.cov_diag[k]).log_prob(z) for k in range(2)]
    w = torch.log_softmax(p.logits, 0)
    want = torch.logsumexp(torch.stack([w[k] + comps[k] for k in range(2)]), 0)
    torch.testing.assert_close(p.log_prob(z), want)


def test_fit_recovers_the_groups_means_and_covariances():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 3, generator=g) @ torch.tensor([[2.0, 0, 0], [0.5, 1.0, 0], [0, 0, 0.3]]) + 5
    b = torch.randn(2000, 3, generator=g) * 0.5 - 5
    z, groups = torch.cat([a, b]), torch.cat([torch.zeros(4000), torch.ones(2000)]).long()
    p = LatentMixture((3,), components=2, rank=3)
    p.fit(z, groups)
    torch.testing.assert_close(torch.softmax(p.logits, 0), torch.tensor([2 / 3, 1 / 3]))
    torch.testing.assert_close(p.loc[0], a.mean(0), atol=1e-5, rtol=0)
    cov0 = p.cov_factor[0] @ p.cov_factor[0].T + torch.diag(p.cov_diag[0])
    torch.testing.assert_close(cov0, torch.cov(a.T), atol=2e-3, rtol=0)    # rank 3 of 3: the sample covariance
    s = p.sample(6000, generator=torch.Generator().manual_seed(1))
    assert abs(float((s[:, 0] > 0).float().mean()) - 2 / 3) < 0.03


def test_sampling_is_seeded_and_temperature_shrinks_the_spread():
    p = LatentMixture((4,), components=1, rank=1)
    p.fit(torch.randn(500, 4, generator=torch.Generator().manual_seed(0)) * 3)
    s1 = p.sample(5, temperature=0.5, generator=torch.Generator().manual_seed(2))
    s2 = p.sample(5, temperature=0.5, generator=torch.Generator().manual_seed(2))
    assert torch.equal(s1, s2)
    t0 = p.sample(3, temperature=0.0, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(t0, p.loc[0].expand(3, 4))


@pytest.mark.parametrize("spec", [{"components": 0, "rank": 2}, {"components": 2}, {"components": 2, "rank": -1},
                                  {"components": True, "rank": 1}, "big", {"components": 2, "rank": 1, "x": 1}])
def test_a_bad_latent_prior_config_is_a_config_error(spec):
    with pytest.raises(ConfigError, match="latent_prior"):
        nfzoo.create_model("glow", image_shape=SHAPE, levels=1, steps=1, hidden=4, latent_prior=spec)


def test_a_conditional_model_refuses_a_latent_prior():
    with pytest.raises(ConfigError, match="unconditional"):
        nfzoo.create_model("glow", image_shape=SHAPE, levels=1, steps=1, hidden=4, num_classes=3,
                           latent_prior={"components": 3, "rank": 1})


# -------------------------------------------------------------------------- fit on a model, save, load
def test_fit_latent_prior_round_trips_through_save_and_load(tmp_path):
    m = tiny()
    ds = labelled()
    m.initialize(ds.images[:32])
    info = fit_latent_prior(m, ds, rank=2)
    assert info == {"components": 3, "rank": 2, "by": "labels", "images": 60}
    assert m.config["latent_prior"] == {"components": 3, "rank": 2}
    assert isinstance(m.prior, LatentMixture)
    m.save_pretrained(tmp_path / "m")
    back = nfzoo.load(str(tmp_path / "m"))
    g = lambda: torch.Generator().manual_seed(0)             # noqa: E731
    assert torch.equal(m.sample(4, generator=g()), back.sample(4, generator=g()))
    x = ds.images[:5]
    torch.testing.assert_close(m.log_prob(x, generator=g()), back.log_prob(x, generator=g()))


def test_fit_latent_prior_refuses_what_it_cannot_fit():
    m = tiny()
    with pytest.raises(UsageError, match="by must be"):
        fit_latent_prior(m, labelled(), by="kmeans")
    with pytest.raises(UsageError, match="rank"):
        fit_latent_prior(m, labelled(), rank=10_000)
    with pytest.raises(UsageError, match="component 2 has 1"):
        ds = labelled(7, 3)
        ds.labels[:] = torch.tensor([0, 0, 0, 1, 1, 1, 2])
        fit_latent_prior(m, ds, rank=1)


def test_refit_prior_cli_writes_the_model_and_its_result_file(tmp_path, monkeypatch):
    m = tiny()
    ds = labelled()
    m.initialize(ds.images[:32])
    m.save_pretrained(tmp_path / "base")
    import nfzoo.data as data

    monkeypatch.setattr(data, "load_dataset", lambda name, split="train", root=None, download=False: labelled(
        60 if split == "train" else 30, seed=0 if split == "train" else 1))
    out = tmp_path / "refit"
    r = runner.invoke(build_app(), ["refit-prior", str(tmp_path / "base"), "--dataset", "toy", "--rank", "2",
                                    "--out", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "refit.json").read_text())
    assert doc["components"] == 3 and doc["rank"] == 2 and doc["test_images"] == 30
    assert math.isfinite(doc["test_bpd_before"]) and math.isfinite(doc["test_bpd_after"])
    assert doc["measured_by"]["command"].startswith("nfzoo refit-prior ")
    assert nfzoo.load(str(out)).config["latent_prior"] == {"components": 3, "rank": 2}
    again = runner.invoke(build_app(), ["refit-prior", str(tmp_path / "base"), "--dataset", "toy", "--out", str(out)])
    assert again.exit_code == 2 and "already holds files" in again.output


def test_refit_prior_cli_refuses_a_conditional_model_before_writing(tmp_path):
    r = runner.invoke(build_app(), ["refit-prior", "glem-mnist5k", "--dataset", "mnist5k", "--out",
                                    str(tmp_path / "x")])
    assert r.exit_code == 2 and "class-conditional" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "x").exists()


# -------------------------------------------------------------------------------- result files
def test_write_result_records_what_measured_it(tmp_path):
    p = write_result(tmp_path / "a" / "r.json", {"fid": 1.5}, "nfzoo eval x")
    doc = json.loads(p.read_text())
    assert doc["fid"] == 1.5
    by = doc["measured_by"]
    assert by["command"] == "nfzoo eval x" and by["nfzoo"] == nfzoo.__version__ and by["date"].endswith("+00:00")
    assert by["commit"] is None or len(by["commit"].split("+")[0]) == 40


def test_mean_sd_is_the_sample_standard_deviation():
    s = mean_sd([1.0, 2.0, 4.0])
    assert s["n"] == 3 and s["mean"] == pytest.approx(7 / 3)
    assert s["sd"] == pytest.approx(float(np.std([1.0, 2.0, 4.0], ddof=1)))
    assert mean_sd([3.0]) == {"mean": 3.0, "sd": 0.0, "n": 1}


def test_recognisable_share_counts_confident_oracle_calls():
    from nfzoo.evaluation.metrics import recognisable_share

    class Fixed(torch.nn.Module):
        def forward(self, x):          # image i: logits making p(max) = 0.95, 0.5, 0.95, 0.5
            conf = torch.tensor([[3.0, 0.0], [0.0, 0.0], [0.0, 3.0], [0.0, 0.0]])
            return conf[: x.shape[0]]
    assert recognisable_share(Fixed(), torch.zeros(4, 1, 2, 2)) == 0.5


def test_eval_seeds_and_out_write_mean_and_sd(tmp_path):
    out = tmp_path / "r.json"
    r = runner.invoke(build_app(), ["eval", "glow-mnist5k", "--dataset", "mnist5k", "--samples", "50", "--seeds",
                                    "2", "-t", "0.7", "--out", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["seeds"] == [0, 1] and doc["n_samples"] == 100 and len(doc["per_seed"]) == 2
    fids = [d["fid"] for d in doc["per_seed"]]
    assert doc["summary"]["fid"]["mean"] == pytest.approx(sum(fids) / 2)
    assert 0 <= doc["summary"]["recognisable"]["mean"] <= 1 and doc["recognisable_real"] > 0.9
    assert doc["oracle"] and doc["sampler"] == "ancestral" and doc["temperature"] == 0.7
    assert "--seeds 2" in doc["measured_by"]["command"] and "--out" not in doc["measured_by"]["command"]
    assert "mean +- sd" in r.output and "recognisable" in r.output


# ------------------------------------------------------------------------------------- --init
def test_train_init_starts_from_a_pretrained_models_weights(tmp_path):
    app = build_app()
    base = ["train", "glow", "--dataset", "digits", "--epochs", "1", "--set", "levels=1", "--set", "steps=1",
            "--set", "hidden=4"]
    r = runner.invoke(app, [*base, "--set", "scale_floor=0", "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    src = nfzoo.load(str(tmp_path / "a"))
    from nfzoo.training.trainer import TrainConfig, Trainer

    cfg = TrainConfig(arch="glow", dataset="digits", epochs=1, init_from=str(tmp_path / "a"),
                      model={"levels": 1, "steps": 1, "hidden": 4})
    t = Trainer(cfg, tmp_path / "b")
    t._build()
    for (k, v), (k2, v2) in zip(t.model.state_dict().items(), src.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    assert t.model.config["scale_floor"] == 0.05            # the new config, the old weights
    bad = runner.invoke(app, [*base[:-2], "--set", "hidden=8", "--init", str(tmp_path / "a"), "--out",
                              str(tmp_path / "c")])
    assert bad.exit_code == 2 and "init_from" in bad.output and not (tmp_path / "c").exists()
    other = runner.invoke(app, ["train", "nice", "--dataset", "digits", "--epochs", "1", "--init",
                                str(tmp_path / "a"), "--out", str(tmp_path / "d")])
    assert other.exit_code == 2 and "glow model" in other.output


def test_the_commit_is_nfzoos_own_never_another_repositorys(tmp_path):
    import subprocess
    from pathlib import Path

    from nfzoo.evaluation.results import source_commit

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert source_commit(tmp_path) is None          # a repository nfzoo is merely installed in
    here = source_commit()                          # nfzoo's own checkout: its HEAD, "+dirty" or not
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                          text=True).stdout.strip()
    if head:                                        # a checkout (not an sdist)
        assert here is not None and here.partition("+")[0] == head
