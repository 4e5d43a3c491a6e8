"""Recipes (nfzoo.training.recipes): every zoo model's recipe parses, builds the architecture and config its
config.json has, agrees with the train.json files its runs wrote, and trains one step; bad recipes are
refused with the file, the stage and the key named; a recipe runs its stages in order."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

import nfzoo
from nfzoo.errors import ConfigError, UnknownNameError, UsageError
from nfzoo.registry.plugins import get_registry
from nfzoo.training.config import TrainConfig
from nfzoo.training.recipes import (
    PREVIOUS,
    find_recipe,
    load_recipe,
    parse_recipe,
    recipe_of_run,
    run_recipe,
    train_config_of,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
ZOO = [e for e in get_registry().list("pretrained")]
NAMES = sorted(e.name for e in ZOO)


def test_every_zoo_model_has_a_recipe():
    assert NAMES and [n for n in NAMES if not get_registry().get("pretrained", n)
                      .metadata.get("recipe_file")] == []


def _last_train(recipe):
    return [s for s in recipe.stages if s.kind == "train"][-1] if recipe.train_stages else None


# keys a later step sets in the shipped config.json, not the training command: the refit's prior, and
# diffused-flows' latent clip (fitted at the end of training)
ADDED_AFTER_TRAINING = {"latent_prior", "latent_clip"}


@pytest.mark.parametrize("name", NAMES)
def test_a_zoo_recipe_builds_the_shipped_architecture_and_config(name):
    from nfzoo.loading.api import architecture_config

    entry = get_registry().get("pretrained", name)
    recipe = find_recipe(name)
    assert recipe.model == name
    last = _last_train(recipe)
    if last is None:                                   # the oracle: a train_oracle stage
        assert [s.kind for s in recipe.stages] == ["train_oracle"]
        assert recipe.stages[0].settings["dataset"] == entry.metadata["dataset"]
        return
    cfg = train_config_of(last, previous=Path("PREVIOUS"))
    assert cfg.arch == entry.metadata["architecture"] and cfg.dataset == entry.metadata["dataset"]
    # the trainer takes the image shape from the data set
    built = architecture_config(cfg.arch, **{"image_shape": entry.metadata["config"]["image_shape"], **cfg.model})
    shipped = {k: v for k, v in entry.metadata["config"].items() if k not in ADDED_AFTER_TRAINING}
    if "init_flow" in shipped:       # the diffused-flows entry ships init_flow null: the weights hold the flow
        assert built.pop("init_flow") == "PREVIOUS" and shipped.pop("init_flow") is None
    built.pop("backend", None), shipped.pop("backend", None)
    built = {k: v for k, v in built.items() if k not in ADDED_AFTER_TRAINING}
    assert json.loads(json.dumps(built)) == shipped
    has_refit = any(s.kind == "refit_prior" for s in recipe.stages)
    assert has_refit == ("latent_prior" in entry.metadata["config"])


@pytest.mark.parametrize("name", [n for n in NAMES if (RESULTS / f"{n}-finetune-train.json").is_file()
                                  or (RESULTS / f"{n}-train.json").is_file()])
def test_a_zoo_recipe_agrees_with_the_train_json_of_its_runs(name):
    recipe = find_recipe(name)
    for suffix, stage_name in (("-finetune-train.json", "finetune"), ("-train.json", "train")):
        f = RESULTS / f"{name}{suffix}"
        if not f.is_file():
            continue
        recorded = TrainConfig.from_dict(json.loads(f.read_text())["train"], str(f))
        stage = next(s for s in recipe.stages if s.name == stage_name)
        ran = train_config_of(stage, previous=Path(recorded.init_from or "x"))
        assert asdict(ran) == asdict(recorded), f"{name}: stage {stage_name} differs from {f.name}"


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("glem-cifar100",)])
def test_a_zoo_recipes_train_stages_train_one_step(name):
    """Each train stage's model, built from the recipe, takes one optimizer step on a batch of its data set
    with a finite loss that moves its weights (glem-cifar100's data set is not on this machine)."""
    from nfzoo.data import load_dataset
    from nfzoo.loading.api import create_model

    recipe = find_recipe(name)
    for stage in recipe.train_stages:
        cfg = train_config_of(stage, previous=Path("unused"))
        model_cfg = {k: v for k, v in cfg.model.items() if k != "init_flow"}
        ds = load_dataset(cfg.dataset, "train")
        x = torch.stack([ds[i][0] for i in range(8)])
        y = torch.tensor([int(ds[i][1]) for i in range(8)])
        torch.manual_seed(0)
        m = create_model(cfg.arch, image_shape=list(x.shape[1:]), **model_cfg)
        y = y if m.num_classes is not None else None
        g = torch.Generator().manual_seed(0)
        m.initialize(x, y, generator=g)
        m.train()
        opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=cfg.lr)
        before = [p.detach().clone() for p in m.parameters() if p.requires_grad]
        phase = m.training_plan(len(x), 1, cfg.epochs, g)[0][0]
        loss, bpd = m.training_loss(x, y, phase, 1, cfg.epochs, generator=g)
        assert torch.isfinite(loss), f"{name}/{stage.name}: loss {loss}"
        loss.backward()
        opt.step()
        after = [p.detach() for p in m.parameters() if p.requires_grad]
        assert any(not torch.equal(a, b) for a, b in zip(before, after)), f"{name}/{stage.name}: nothing moved"


def _doc(**stages):
    return {"recipe": 1, "stages": [{"name": k, **v} for k, v in stages.items()]}


TINY = {"arch": "glow", "dataset": "digits", "epochs": 1, "batch_size": 64, "eval_batch": 500,
        "model": {"levels": 1, "steps": 1, "hidden": 8}}


@pytest.mark.parametrize("doc,message", [
    ([], "a recipe is a mapping"),
    ({"recipe": 2, "stages": []}, "\"recipe\" must be 1"),
    ({"recipe": 1, "stages": [], "extra": 1}, "unknown key(s) 'extra'"),
    ({"recipe": 1, "stages": []}, "list of 1 to 32 stages"),
    (_doc(a={"train": {**TINY, "epochz": 3}}), "stage 1 (a) has unknown training setting(s) 'epochz'"),
    (_doc(a={"train": {**TINY, "epochs": 0}}), "stage 1 (a)"),
    (_doc(a={"train": {**TINY, "lr": "fast"}}), "stage 1 (a)"),
    (_doc(a={"train": {**TINY, "init_from": PREVIOUS}}), "this is the first stage"),
    (_doc(a={"refit_prior": {"dataset": "digits"}}), "cannot come first"),
    (_doc(a={"train": TINY}, b={"refit_prior": {"dataset": "digits", "rank": "high"}}), "rank must be int"),
    (_doc(a={"train": TINY}, b={"refit_prior": {"rank": 4}}), "needs its dataset"),
    (_doc(a={"train": TINY, "refit_prior": {}}), "exactly one of"),
    (_doc(a={"bake": {}}), "exactly one of"),
    ({"recipe": 1, "stages": [{"name": "a b", "train": TINY}]}, "name must be a unique word"),
])
def test_a_bad_recipe_is_a_config_error_naming_the_stage_and_key(doc, message):
    with pytest.raises(ConfigError) as e:
        parse_recipe(doc, "r.yaml")
    assert "r.yaml" in str(e.value) and message in str(e.value)


def test_a_recipe_file_is_read_safely_and_sized_first(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("recipe: 1\nstages: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not a readable YAML recipe"):
        load_recipe(p)
    p.write_text("recipe: 1\nstages: []\n" + "#" * (1 << 20))
    with pytest.raises(ConfigError, match="a recipe is at most"):
        load_recipe(p)
    with pytest.raises(UsageError, match="no recipe file"):
        find_recipe(str(tmp_path / "missing.yaml"))
    with pytest.raises(UnknownNameError, match="glow-mnist5k"):
        find_recipe("glow-mnist5")


def test_overrides_apply_to_every_train_stage_and_are_checked():
    r = find_recipe("glow-mnist5k").with_overrides({"epochs": 1}, {"hidden": 8})
    assert [s.settings["epochs"] for s in r.train_stages] == [1, 1]
    assert [s.settings["model"]["hidden"] for s in r.train_stages] == [8, 8]
    assert r.stages[1].settings["init_from"] == PREVIOUS
    with pytest.raises(ConfigError, match="epochs"):
        find_recipe("glow-mnist5k").with_overrides({"epochs": -1})


def test_a_recipe_round_trips_through_its_yaml(tmp_path):
    r = find_recipe("diffused-flows-mnist5k")
    r.save(tmp_path / "r.yaml")
    assert load_recipe(tmp_path / "r.yaml").to_doc() == r.to_doc()
    one = recipe_of_run(TrainConfig(**TINY), model="x")
    assert train_config_of(one.stages[0]) == TrainConfig(**TINY)


def test_run_recipe_chains_train_finetune_refit_and_resumes(tmp_path):
    r = parse_recipe(_doc(train={"train": TINY},
                          finetune={"train": {**TINY, "init_from": PREVIOUS, "lr": 5e-4}},
                          refit={"refit_prior": {"dataset": "digits", "rank": 2, "by": "single"}}), "tiny")
    res = run_recipe(r, tmp_path / "out")
    out = tmp_path / "out"
    assert [Path(s["dir"]).name for s in res["stages"]] == ["1-train", "2-finetune", "3-refit"]
    ft = json.loads((out / "2-finetune" / "train.json").read_text())["train"]
    assert ft["init_from"] == str(out / "1-train") and ft["lr"] == 5e-4
    refit = json.loads((out / "3-refit" / "refit.json").read_text())
    assert refit["components"] == 1 and refit["rank"] == 2
    assert load_recipe(out / "recipe.yaml").to_doc() == r.to_doc()
    m = nfzoo.load(str(out))           # the last stage's model, in OUT
    assert m.config["latent_prior"] == {"components": 1, "rank": 2}
    assert (out / "model.safetensors").read_bytes() == (out / "3-refit" / "model.safetensors").read_bytes()
    # resume: finished stages are kept as they are (their files untouched)
    stamp = (out / "1-train" / "model.safetensors").stat().st_mtime_ns
    res2 = run_recipe(r, out, resume=True)
    assert (out / "1-train" / "model.safetensors").stat().st_mtime_ns == stamp
    assert res2["stages"][2]["result"] == res["stages"][2]["result"]


# ------------------------------------------------------------------------------------------------ the CLI
def test_cli_runs_a_zoo_recipe_with_overrides_and_resumes(runner, app, tmp_path):
    out = tmp_path / "r"
    args = ["train", "--recipe", "glow-mnist5k", "--dataset", "digits", "--epochs", "1", "--set", "hidden=8",
            "--out", str(out)]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "stage 3/3: refit (refit-prior)" in r.output
    ran = load_recipe(out / "recipe.yaml")
    assert [s.settings["dataset"] for s in ran.stages] == ["digits"] * 3
    assert [s.settings["epochs"] for s in ran.train_stages] == [1, 1]
    assert "--recipe glow-mnist5k" in json.loads((out / "3-refit" / "refit.json").read_text())["measured_by"][
        "command"]
    m = nfzoo.load(str(out))
    assert m.architecture == "glow" and m.config["hidden"] == 8 and m.config["latent_prior"] is not None
    weights = _tensors(out / "model.safetensors")
    r = runner.invoke(app, args)                                   # the folder is taken: nothing overwritten
    assert r.exit_code == 2 and "already holds files" in r.output
    r = runner.invoke(app, args + ["--resume"])                    # every stage finished: kept as it was
    assert r.exit_code == 0, r.output
    assert _same(_tensors(out / "model.safetensors"), weights)


def test_a_plain_run_writes_the_recipe_that_trains_it_again(runner, app, tmp_path):
    first = tmp_path / "a"
    r = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--epochs", "1", "--set", "levels=1",
                            "--set", "steps=1", "--set", "hidden=8", "--seed", "3", "--out", str(first)])
    assert r.exit_code == 0, r.output
    again = tmp_path / "b"
    r = runner.invoke(app, ["train", "--recipe", str(first / "recipe.yaml"), "--out", str(again)])
    assert r.exit_code == 0, r.output
    # the same weights bit for bit (the files' bytes may differ: safetensors orders its metadata freely)
    assert _same(_tensors(again / "1-train" / "model.safetensors"), _tensors(first / "model.safetensors"))


def _tensors(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("args,message", [
    (["train", "glow", "--recipe", "glow-mnist5k"], "--recipe names the architectures it trains"),
    (["train", "--recipe", "glow-mnist5"], "glow-mnist5k"),
    (["train", "--recipe", "glow-mnist5k", "--init", "glow-mnist5k"], "a recipe's stages say what they start"),
    (["train", "--recipe", "glow-mnist5k", "--epochs", "0"], "--epochs"),
    (["train", "--recipe", "glow-mnist5k", "--log", "nonsense"], "nonsense"),
    (["train", "--dataset", "digits"], "give the architecture and the data set"),
])
def test_cli_bad_recipe_input_exits_2_before_any_work(runner, app, tmp_path, args, message):
    out = tmp_path / "r"
    r = runner.invoke(app, args + ["--out", str(out)])
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert not out.exists()
