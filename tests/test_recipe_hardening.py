"""A hostile recipe file is refused before any work (nfzoo.training.recipes): YAML alias bombs and deep nesting are
bounded while the file is scanned, before yaml builds anything; every parse failure is a ConfigError (exit
2, no "internal error"); and every stage is checked (architecture, model config, data set, init_from, the
refit and oracle numbers) before the first one trains."""
from __future__ import annotations

import pytest
import yaml

from nfzoo.errors import ConfigError
from nfzoo.registry.plugins import get_registry
from nfzoo.training.recipes import (
    MAX_RECIPE_DEPTH,
    MAX_RECIPE_NODES,
    PREVIOUS,
    check_recipe,
    find_recipe,
    load_recipe,
    parse_recipe,
    run_recipe,
)

TINY = {"arch": "glow", "dataset": "digits", "epochs": 1, "batch_size": 64, "eval_batch": 500,
        "model": {"levels": 1, "steps": 1, "hidden": 8}}
NAMES = sorted(e.name for e in get_registry().list("pretrained"))


def _bomb(levels: int = 9, width: int = 9) -> str:
    """The 623-byte alias bomb: level k is a list of `width` aliases of level k-1 (width**levels values)."""
    names = "abcdefghijklmnopqrstuvwxyz"
    lines = [f"    {names[0]}: &{names[0]} [{', '.join(['x'] * width)}]"]
    for k in range(1, levels):
        lines.append(f"    {names[k]}: &{names[k]} [{', '.join(['*' + names[k - 1]] * width)}]")
    return ("recipe: 1\nstages:\n- name: train\n  train:\n    arch: glow\n    dataset: digits\n    model:\n"
            + "\n".join("  " + line for line in lines) + "\n")


@pytest.fixture
def no_compose(monkeypatch):
    """yaml.safe_load (which builds the document) must not run: the scan refuses the file first."""
    def refuse(*a, **k):
        raise AssertionError("yaml.safe_load ran on a file the scan should have refused")
    monkeypatch.setattr(yaml, "safe_load", refuse)


def test_an_alias_bomb_is_refused_while_scanning(tmp_path, no_compose):
    p = tmp_path / "bomb.yaml"
    p.write_text(_bomb())
    assert p.stat().st_size < 1000
    with pytest.raises(ConfigError) as e:
        load_recipe(p)
    msg = str(e.value)
    assert str(p) in msg and f"more than {MAX_RECIPE_NODES}" in msg and "alias" in msg


def test_a_recursive_alias_is_refused(tmp_path, no_compose):
    p = tmp_path / "loop.yaml"
    p.write_text("recipe: 1\nstages:\n- name: t\n  train: &t {arch: glow, dataset: digits, model: *t}\n")
    with pytest.raises(ConfigError, match="inside the value it names"):
        load_recipe(p)


def test_a_recipe_using_a_few_aliases_still_loads(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("recipe: 1\nstages:\n"
                 "- name: train\n"
                 "  train: &t {arch: glow, dataset: digits, epochs: 1, model: &m {levels: 1, steps: 1, hidden: 8}}\n"
                 "- name: finetune\n"
                 "  train: {<<: *t, init_from: '@previous', model: *m}\n"
                 "- name: again\n"
                 "  train: {<<: *t, init_from: '@previous', lr: 0.0005, model: *m}\n")
    r = load_recipe(p)
    check_recipe(r)
    assert [s.settings["model"] for s in r.train_stages] == [{"levels": 1, "steps": 1, "hidden": 8}] * 3
    assert r.stages[2].settings["lr"] == 0.0005 and r.stages[2].settings["init_from"] == PREVIOUS


@pytest.mark.parametrize("nested", ["[" * 5000 + "]" * 5000, "{a: " * 5000 + "1" + "}" * 5000,
                                    "".join(f"\n{' ' * (i + 1)}k{i}:" for i in range(500)) + " 1"])
def test_deep_nesting_is_a_config_error(tmp_path, nested, no_compose):
    p = tmp_path / "deep.yaml"
    p.write_text("recipe: 1\nstages: " + nested + "\n")
    with pytest.raises(ConfigError) as e:
        load_recipe(p)
    assert str(p) in str(e.value) and f"more than {MAX_RECIPE_DEPTH} levels deep" in str(e.value)


@pytest.mark.parametrize("text,message", [
    ("recipe: 1\nstages: [{name: t, train: {arch: glow, dataset: digits, epochs: 1" + "0" * 5000 + "}}]\n",
     "not a readable YAML recipe"),
    ("recipe: 1\nstages: [{name: t, train: {arch: glow, dataset: digits, epochs: [1}}]\n",
     "not a readable YAML recipe"),
    ("recipe: 1\nstages: *nowhere\n", "not a readable YAML recipe"),
    ("recipe: 1\n---\nrecipe: 1\n", "not a readable YAML recipe"),
])
def test_every_parse_failure_is_a_config_error(tmp_path, text, message):
    p = tmp_path / "r.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_recipe(p)
    assert str(p) in str(e.value) and message in str(e.value)


def test_an_undecodable_file_is_a_config_error(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_bytes(b"recipe: 1\nstages: \xff\xfe\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_recipe(p)


@pytest.mark.parametrize("name", NAMES)
def test_every_zoo_recipe_passes_check_recipe(name):
    check_recipe(find_recipe(name))


# ------------------------------------------------------------------------- every stage before the first
def _three(tmp_path, second=None, third=None):
    """A 3-stage recipe (train, finetune from it, oracle) with stage 2's train settings and stage 3's
    oracle settings changed."""
    return {"recipe": 1, "stages": [
        {"name": "train", "train": TINY},
        {"name": "finetune", "train": {**TINY, "init_from": PREVIOUS, **(second or {})}},
        {"name": "oracle", "train_oracle": {"dataset": "digits", "epochs": 1, **(third or {})}}]}


BAD_LATER_STAGES = [
    ({"arch": "glwo"}, None, "stage 2 (finetune): unknown architecture 'glwo'. Did you mean: glow"),
    ({"model": {"levles": 1}}, None, "stage 2 (finetune): glow has no config key(s) 'levles'"),
    ({"model": {"levels": 0}}, None, "stage 2 (finetune): levels of glow must be an integer in [1, 12]"),
    ({"model": {"levels": 1, "steps": 1, "hidden": 8, "latent_prior": {"rank": 1}}}, None,
     "stage 2 (finetune): latent_prior must be null or an object"),
    ({"init_from": "NOWHERE"}, None, "stage 2 (finetune): init_from"),
    ({"init_from": "glow-mnist5"}, None, "unknown pretrained model 'glow-mnist5'"),
    ({"init_from": "realnvp-mnist5k"}, None, "init_from 'realnvp-mnist5k' is a realnvp model; this stage trains glow"),
    ({"dataset": "mnist5"}, None, "stage 2 (finetune): unknown dataset 'mnist5'. Did you mean: mnist5k"),
    ({"dataset": "folder:NOWHERE"}, None, "stage 2 (finetune): image folder"),
    ({"epochs": 0}, None, "stage 2 (finetune)"),
    (None, {"epochs": -1}, "stage 3 (oracle): epochs must be an integer in [1, "),
    (None, {"batch_size": 0}, "stage 3 (oracle): batch_size must be an integer in [1, "),
    (None, {"lr": 0}, "stage 3 (oracle): lr must be a positive finite number"),
    (None, {"lr": float("nan")}, "stage 3 (oracle): lr must be a positive finite number"),
    (None, {"weight_decay": -1.0}, "stage 3 (oracle): weight_decay must be a finite number >= 0"),
    (None, {"seed": 2 ** 32}, "stage 3 (oracle): seed must be an integer in [0, 4294967295]"),
    (None, {"seed": -1}, "stage 3 (oracle): seed must be an integer in [0, 4294967295]"),
    (None, {"dataset": "cifar1000"}, "stage 3 (oracle): unknown dataset 'cifar1000'"),
]


def _fill(value, tmp_path):
    return {k: (str(tmp_path / "nowhere") if v == "NOWHERE" else
                f"folder:{tmp_path / 'nowhere'}" if v == "folder:NOWHERE" else v) for k, v in (value or {}).items()}


@pytest.mark.parametrize("second,third,message", BAD_LATER_STAGES)
def test_check_recipe_finds_a_bad_later_stage(tmp_path, second, third, message):
    with pytest.raises(ConfigError) as e:         # the numbers when parsed, the rest by check_recipe
        check_recipe(parse_recipe(_three(tmp_path, _fill(second, tmp_path), _fill(third, tmp_path)), "r.yaml"))
    assert "r.yaml: " in str(e.value) and message in str(e.value)


@pytest.mark.parametrize("settings,message", [
    ({"rank": -1}, "rank must be an integer in [0, "),
    ({"seed": 2 ** 32}, "seed must be an integer in [0, 4294967295]"),
    ({"dataset": "folder:NOWHERE"}, "image folder"),
])
def test_check_recipe_finds_a_bad_refit_stage(tmp_path, settings, message):
    doc = {"recipe": 1, "stages": [{"name": "train", "train": TINY},
                                   {"name": "refit", "refit_prior": {"dataset": "digits", "rank": 2,
                                                                     **_fill(settings, tmp_path)}}]}
    with pytest.raises(ConfigError) as e:
        check_recipe(parse_recipe(doc, "r.yaml"))
    assert "r.yaml: stage 2 (refit): " in str(e.value) and message in str(e.value)


def test_init_from_an_existing_model_folder_passes(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    doc = {"recipe": 1, "stages": [{"name": "a", "train": {**TINY, "init_from": str(folder)}}]}
    check_recipe(parse_recipe(doc, "r.yaml"))
    doc["stages"][0]["train"]["init_from"] = "glow-mnist5k"
    check_recipe(parse_recipe(doc, "r.yaml"))


def test_run_recipe_checks_every_stage_before_the_first_trains(tmp_path):
    r = parse_recipe(_three(tmp_path), "r.yaml")
    r.stages[2].settings["epochs"] = -1            # a Recipe changed in code is checked too
    with pytest.raises(ConfigError, match=r"stage 3 \(oracle\): epochs"):
        run_recipe(r, tmp_path / "out")
    r = parse_recipe(_three(tmp_path, {"dataset": "mnist5"}), "r.yaml")
    with pytest.raises(ConfigError, match=r"stage 2 \(finetune\): unknown dataset"):
        run_recipe(r, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("second,third,message", BAD_LATER_STAGES[:1] + BAD_LATER_STAGES[4:5]
                         + BAD_LATER_STAGES[7:8] + BAD_LATER_STAGES[10:11])
def test_cli_refuses_a_bad_later_stage_before_any_training(runner, app, tmp_path, second, third, message):
    p = tmp_path / "recipe.yaml"
    p.write_text(yaml.safe_dump(_three(tmp_path, _fill(second, tmp_path), _fill(third, tmp_path))))
    out = tmp_path / "out"
    r = runner.invoke(app, ["train", "--recipe", str(p), "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split()) and "internal error" not in r.output
    assert not out.exists()            # no stage folder, no checkpoint: nothing trained


@pytest.mark.parametrize("text", [
    "recipe: 1\nstages: " + "[" * 5000 + "]" * 5000 + "\n",
    "recipe: 1\nstages: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
    _bomb(),
    "recipe: 1\nstages: [{name: t, train: {arch: glow, dataset: digits, epochs: 1" + "0" * 5000 + "}}]\n",
])
def test_cli_refuses_a_hostile_recipe_file_with_exit_2(runner, app, tmp_path, text):
    p = tmp_path / "recipe.yaml"
    p.write_text(text)
    out = tmp_path / "out"
    r = runner.invoke(app, ["train", "--recipe", str(p), "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert "internal error" not in r.output and "Traceback" not in r.output
    assert not out.exists()
