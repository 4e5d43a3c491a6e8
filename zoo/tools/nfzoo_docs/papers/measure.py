"""The paper-table scripts' measurements of a run, each cached as a JSON record (records/<run>/KEY.json) so that
a second call measures nothing: NF-A, test bpd, sample metrics, CNN-A; `measured` reads a run's records back."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

from .runs import (
    CNN_A_IMAGES,
    CNN_A_SAMPLING,
    DATASET,
    PAPER_SAMPLING,
    RFCM_SAMPLING,
    SAMPLE_SEEDS,
    SAMPLES,
    log,
    mean_sd,
    read,
    rec,
    write,
)

_CACHE: Dict[str, Any] = {}


def test_set():
    if "test" not in _CACHE:
        from nfzoo.data import load_dataset

        _CACHE["test"] = load_dataset(DATASET, "test")
    return _CACHE["test"]


def oracle():
    """(OracleNet, its name): the data set's default oracle (the zoo's oracle-mnist5k)."""
    if "oracle" not in _CACHE:
        from nfzoo.evaluation.oracle import find_oracle

        _CACHE["oracle"] = find_oracle(None, DATASET)
    return _CACHE["oracle"]


def load_model(run_dir: Path, sampler: Optional[str] = None):
    import nfzoo

    if not (Path(run_dir) / "config.json").is_file():
        raise SystemExit(f"error: {run_dir} holds no trained model, but {rec(run_dir)}/paper-run.json says it "
                         "was trained: a measurement is missing and the weights are not here. Move that "
                         "record folder away to retrain the run, or measure nothing (--report-only)")
    m = nfzoo.load(Path(run_dir))
    if sampler is not None:
        m.sampler = sampler
    return m


def is_monomodal(model) -> bool:
    return bool(getattr(model.prior, "shared", False))


def cached(run_dir: Path, key: str, fn: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
    path = rec(run_dir) / f"{key}.json"
    doc = read(path)
    if doc is None:
        log(f"measuring {key} of {Path(run_dir).name}")
        t0 = time.perf_counter()
        doc = fn()
        doc["seconds"] = time.perf_counter() - t0
        write(path, doc)
    return doc


def nf_accuracy(run_dir: Path) -> Dict[str, Any]:
    """NF-A: the likelihood classifier argmax_y log p(x | y) on the test split (nfzoo.evaluation.bpd; with
    conditional encoding, argmax_y log p(x, code_y): one pass per class's code)."""
    def run():
        from nfzoo.evaluation.bpd import evaluate_classification

        return evaluate_classification(load_model(run_dir), test_set())
    return cached(run_dir, "nf-a", run)


def nf_accuracy_random_code(run_dir: Path, seed: int = 0) -> Dict[str, Any]:
    """CEGLEM classified as the paper did (section 5.2): the test image's code is unknown, so a random
    class's code (its prototype, no noise) is appended and the class gaussians of the latent vote,
    argmax_y log N(z; mu_y, Sigma_y)."""
    def run():
        import torch

        m = load_model(run_dir)
        if not m.code_rows or is_monomodal(m):
            raise ValueError("the random-code NF-A is for CE models with class gaussians (CEGLEM)")
        from nfzoo.data import iterate

        gen = torch.Generator().manual_seed(seed)
        correct = n = 0
        with torch.no_grad():
            for x, y in iterate(test_set(), 500, shuffle=False):
                codes = torch.randint(0, m.num_classes, (x.shape[0],), generator=gen)
                z, _ = m._latent(x, codes, noise=False)
                pred = m.prior.log_prob_all(z).argmax(1)
                correct += int((pred == y).sum())
                n += x.shape[0]
        return {"accuracy": correct / n, "images": n, "seed": seed,
                "protocol": "a uniformly random class code appended to each test image; argmax over the "
                            "class gaussians of the latent"}
    return cached(run_dir, f"nf-a-random-code-s{seed}", run)


def code_label_agreement(run_dir: Path, temperature: float = PAPER_SAMPLING[1], n: int = SAMPLES,
                         seed: int = 0) -> Dict[str, Any]:
    """CEGLEM draws a class through its gaussian and writes a class into its code rows: how often the two
    agree (the paper, section 5.2: "both ... provide identical class-labels during image generation").
    n latents from the class gaussians (balanced classes, diagonal, at `temperature`), decoded; the label
    read from the code rows (GLEMFlow.read_labels) against the gaussian's class."""
    def run():
        import torch

        m = load_model(run_dir)
        if not m.code_rows or is_monomodal(m):
            raise ValueError("the code / gaussian agreement is for CE models with class gaussians (CEGLEM)")
        gen = torch.Generator().manual_seed(seed)
        y = torch.arange(n) % m.num_classes
        agree = 0
        with torch.no_grad():
            for i in range(0, n, 250):
                yb = y[i:i + 250]
                z = m.prior.sample(yb.numel(), yb, temperature=temperature, generator=gen)
                v, _ = m.bijector.inverse(z, None)
                agree += int((m.read_labels(v) == yb).sum())
        return {"agreement": agree / n, "n": n, "temperature": temperature, "seed": seed}
    return cached(run_dir, f"code-agreement-t{temperature:g}-n{n}-s{seed}", run)


def test_bpd(run_dir: Path) -> Dict[str, Any]:
    """nfzoo.evaluation.bpd.evaluate_bpd, seed 0: bpd of p(x | y) and of the class mixture p(x)."""
    def run():
        from nfzoo.evaluation.bpd import evaluate_bpd

        return evaluate_bpd(load_model(run_dir), test_set(), seed=0)
    return cached(run_dir, "bpd", run)


def draw_monomodal(model, n: int, temperature: float, seed: int, batch: int = 250):
    """A monomodal CE model's samples and the labels read from their code rows (sample_with_labels), with
    the count of non-finite samples (left out, as evaluate_samples does)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    xs, ys, bad = [], [], 0
    for i in range(0, n, batch):
        x, y = model.sample_with_labels(min(batch, n - i), temperature=temperature, generator=gen)
        x = x.float().cpu()
        ok = torch.isfinite(x.flatten(1)).all(1)
        bad += int((~ok).sum())
        xs.append(x[ok].clamp(0, 1))
        ys.append(y.cpu()[ok])
    return torch.cat(xs), torch.cat(ys), bad


def _monomodal_sample_metrics(model, n: int, temperature: float, seed: int) -> Dict[str, Any]:
    """evaluate_samples' metrics for a model whose labels come with its samples (monomodal CE): FID and
    Coverage on the oracle's features against the test split, label reliability = the oracle's accuracy on
    the labels read from the generated code rows."""
    import torch

    from nfzoo.evaluation import metrics

    net, _ = oracle()
    x, y, bad = draw_monomodal(model, n, temperature, seed)
    real = _CACHE.get("real_feats")
    if real is None:
        real = _CACHE["real_feats"] = metrics.dataset_features(net.features, test_set())
    fake = metrics.compute_features(net.features, x)
    net.eval()
    with torch.no_grad():
        logits = torch.cat([net(x[i:i + 500]) for i in range(0, x.shape[0], 500)])
    return {"fid": metrics.fid(real, fake), **metrics.coverage_density(real, fake, 5), "n_samples": n,
            "nonfinite_samples": bad, "n_real": len(test_set()), "k": 5, "temperature": temperature,
            "seed": seed, "features": "oracle",
            "label_reliability": float((logits.argmax(1) == y).double().mean()),
            "recognisable": float((torch.softmax(logits, 1).amax(1) >= metrics.RECOGNISABLE).sum()) / n,
            "label_counts": torch.bincount(y, minlength=model.num_classes).tolist(),
            "labels_from": "the generated code rows (sample_with_labels)"}


def sample_metrics(run_dir: Path, sampler: str, temperature: float, seeds: Sequence[int] = SAMPLE_SEEDS,
                   n: int = SAMPLES) -> Optional[Dict[str, Any]]:
    """FID, Coverage, label reliability of n samples per seed (nfzoo.evaluation.metrics.evaluate_samples with the
    oracle; monomodal CE models, which cannot be asked for a class, through _monomodal_sample_metrics).
    None where the setting does not apply (RFCM on a monomodal model)."""
    def run():
        from nfzoo.evaluation.metrics import evaluate_samples

        m = load_model(run_dir, sampler)
        per_seed = []
        for s in seeds:
            if is_monomodal(m):
                per_seed.append(_monomodal_sample_metrics(m, n, temperature, s))
            else:
                per_seed.append(evaluate_samples(m, test_set(), n, oracle=oracle()[0], seed=s,
                                                 temperature=temperature))
        summary = {k: mean_sd(r[k] for r in per_seed) for k in ("fid", "coverage", "density",
                                                               "label_reliability", "recognisable")}
        return {"sampler": sampler, "temperature": temperature, "n_per_seed": n, "seeds": list(seeds),
                "oracle": oracle()[1], "per_seed": per_seed, "summary": summary,
                "nonfinite_samples": sum(r["nonfinite_samples"] for r in per_seed)}
    key = f"samples-{sampler}-t{temperature:g}-n{n}-s{'_'.join(map(str, seeds))}"
    done = read(rec(run_dir) / f"{key}.json")   # a recorded measurement needs no weights
    if done is not None:
        return done
    if sampler == "rfcm" and is_monomodal(load_model(run_dir)):
        return None
    return cached(run_dir, key, run)


def cnn_a(run_dir: Path, seed: int, n: int = CNN_A_IMAGES, sampling=CNN_A_SAMPLING) -> Dict[str, Any]:
    """CNN-A (nfzoo_heads.classifier.cnn_a without the real-data baseline): a ResNet-18 trained for the
    heads' recipe on n generated images and tested on the real test split. A monomodal CE model draws
    unconditionally and the labels are read from the code rows (the paper's CE baseline)."""
    sampler, temperature = sampling

    def run():
        from nfzoo_heads.classifier import RECIPE, as_tensors, train_classifier
        from nfzoo_heads.classifier import cnn_a as heads_cnn_a

        m = load_model(run_dir, sampler)
        if not is_monomodal(m):
            doc = heads_cnn_a(m, DATASET, n=n, temperature=temperature, seed=seed, baseline=False)
            doc.pop("summary", None)
            return doc
        x, y, bad = draw_monomodal(m, n, temperature, seed)
        k = 0
        while x.shape[0] < n and k < 20:     # redraw the non-finite ones, as sample_labelled does
            x2, y2, _ = draw_monomodal(m, n - x.shape[0], temperature, seed + 1000 * (k + 1))
            import torch
            x, y = torch.cat([x, x2]), torch.cat([y, y2])
            k += 1
        res = train_classifier(x, y, m.num_classes, as_tensors(test_set()), RECIPE["epochs"], seed)
        res.pop("net")
        return {"task": "cnn-a", "n_generated": n, "temperature": temperature, "sampler": sampler,
                "redrawn_nonfinite": bad, "labels_from": "the generated code rows (sample_with_labels)",
                "label_counts": [int((y == c).sum()) for c in range(m.num_classes)],
                "recipe": dict(RECIPE), "accuracy": res["test_accuracy"], "cnn_a": res}
    return cached(run_dir, f"cnn-a-{sampler}-t{temperature:g}-n{n}-s{seed}", run)


def measure_standard(run_dir: Path) -> None:
    """The measurements every GLEM table makes of a run: NF-A, test bpd, and the sample metrics with the
    paper's sampling (diagonal gaussians, T = 0.9) and with RFCM (T = 0.7)."""
    nf_accuracy(run_dir)
    test_bpd(run_dir)
    sample_metrics(run_dir, *PAPER_SAMPLING)
    sample_metrics(run_dir, *RFCM_SAMPLING)


def measured(run_dir: Path, cnn_seed: Optional[int] = None) -> Dict[str, Any]:
    """A run's cached measurements (None where not measured yet): nf_a, bpd, bpd_mixture; fid, coverage, l_r
    (label reliability) and nonfinite with the paper's sampling, the same prefixed rfcm_ with RFCM (the
    sample metrics as their summaries over the sample seeds: mean and sd); with cnn_seed, cnn_a and
    cnn_a_redrawn_nonfinite of the CNN seeded so."""
    p = rec(run_dir)
    tag = f"n{SAMPLES}-s{'_'.join(map(str, SAMPLE_SEEDS))}"
    nfa, bpd = read(p / "nf-a.json"), read(p / "bpd.json")
    row: Dict[str, Any] = {"nf_a": None if nfa is None else nfa["accuracy"],
                           "bpd": None if bpd is None else bpd["bpd"],
                           "bpd_mixture": None if bpd is None else bpd.get("bpd_marginal")}
    for prefix, (sampler, temperature) in (("", PAPER_SAMPLING), ("rfcm_", RFCM_SAMPLING)):
        doc = read(p / f"samples-{sampler}-t{temperature:g}-{tag}.json")
        for key, name in (("fid", "fid"), ("coverage", "coverage"), ("l_r", "label_reliability")):
            row[prefix + key] = None if doc is None else doc["summary"].get(name)
        row[prefix + "nonfinite"] = None if doc is None else doc["nonfinite_samples"]
    if cnn_seed is not None:
        cnn = read(p / f"cnn-a-{CNN_A_SAMPLING[0]}-t{CNN_A_SAMPLING[1]:g}-n{CNN_A_IMAGES}-s{cnn_seed}.json")
        row["cnn_a"] = None if cnn is None else cnn["accuracy"]
        row["cnn_a_redrawn_nonfinite"] = None if cnn is None else cnn.get("redrawn_nonfinite")
    return row

