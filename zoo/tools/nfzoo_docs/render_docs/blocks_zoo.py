"""The zoo models' training, from their chain of recorded steps: the zoo's training table (zoo-training) and a
card's training, recipe, bound and trajectory blocks; glow-lr-schedule (a training-schedule study); the README's
short zoo table (zoo-headline) and the site's list of the zoo (zoo-pages)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from .chain import (
    bound_doc,
    bpd_cell,
    finetune_history_rel,
    history_rel,
    is_bound,
    last_tested,
    noise_note,
    noise_sigma,
    recipe,
    refit_rel,
    shipped,
)
from .knowledge import block_config, has_mixture, in_order, model_data
from .registry import block
from .results import RESULTS, TOOL, Results, num, pm, rel_results, table
from .samples import sample_summary, sampler_label, sampling_default


@block("zoo-training")
def b_zoo_training(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """The zoo models' test bpd (of the weights that ship) and epochs, with the chain of commands that made
    each."""
    rows, rels, recipes, notes = [], [], [], []
    for name in in_order(index):
        e = index[name]
        if e.get("kind", "flow") != "flow" or not res.exists(history_rel(name)):
            continue
        h = res.history(history_rel(name))
        rels.append(history_rel(name))
        bpd, brels = bpd_cell(res, name, mixture=True)
        rels += brels
        epochs = str(h[-1].get("epoch"))
        files = [f"`{history_rel(name)}`"]
        if res.exists(finetune_history_rel(name)):
            ft = res.history(finetune_history_rel(name))
            epochs += f" + {ft[-1].get('epoch')} (fine-tune)"
            files.append(f"`{finetune_history_rel(name)}`")
        stage1 = model_data(name).get("stage1")     # a first stage trained before the model (models.json)
        if stage1 and res.exists(stage1["history"]):
            s1 = res.history(stage1["history"])
            rels.append(rel_results(stage1["history"]))
            epochs = f"{s1[-1].get('epoch')} ({stage1['label']}) + {epochs} (end to end)"
        steps = recipe(res, name)
        if any(any(r.endswith("-train.json") or r.endswith("-refit.json") for r in st[2]) for st in steps):
            recipes.append(f"- {name}: " + "; then ".join(
                f"{what}: `{cmd}`" if cmd else f"{what}: (command not recorded)" for what, cmd, _ in steps))
            rels += [r for st in steps for r in st[2]]
        note = noise_note(res, name)
        if note:
            notes.append(note + ".")
        rows.append([name, bpd, epochs, ", ".join(files)])
    out = table(["model", "test bpd (mnist5k test split)", "epochs", "per-epoch numbers"], rows)
    out += ["", "Test bpd: that of the weights that ship, on the 1000 test images with seed 0's dequantization "
            "noise (exact for the flows): after a refit of the latent prior (`nfzoo refit-prior`) its result "
            "file's, with the bpd under the N(0, I) prior beside it; else the last epoch's of the fine-tune, or "
            "of the training run. For ddpm and diffused-flows an upper bound estimated with one random "
            "timestep per image, so it is reported as mean +- sd over seeds."] + [""] * bool(notes) + notes
    if recipes:
        out += ["", "How the shipped weights were made, each command from its file (a run's train.json, a "
                "refit's measured_by; a fine-tune's `--init` is the zoo model as it shipped before):", ""] + recipes
    return out + res.sources(rels)


@block("recipe", needs_model=True)
def b_recipe(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """The chain of commands that made a zoo model's shipped weights, each from its file."""
    steps = recipe(res, arg)
    if not steps:
        return [f"No training history of {arg} under {RESULTS}/: no recipe."]
    out = []
    for i, (what, cmd, rels) in enumerate(steps, 1):
        where = f" (`{rels[0]}`)" if rels else ""
        if rels and rels[0].endswith("-history.json") and cmd:
            where = f" (the run of `{rels[0]}`, as recorded when that file was committed)"
        out += [f"{i}. {what[0].upper() + what[1:]}{where}:", "",
                f"       {cmd}" if cmd else "       (the command is not recorded)", ""]
    if any(what == "fine-tune" for what, _, _ in steps):
        out += ["The fine-tune's `--init` names the zoo model as it shipped before the fine-tune.", ""]
    note = noise_note(res, arg)
    if note:
        out += [note + ".", ""]
    return out[:-1] + res.sources([r for _, _, rels in steps for r in rels])


def _run_rows(h: List[Dict[str, Any]], prefix: str = "") -> List[List[str]]:
    """Rows of one run's history: test bpd at the end and at its best, train bpd, epochs, epoch time."""
    best = min((r for r in h if isinstance(r.get("test_bpd"), (int, float))), key=lambda r: r["test_bpd"])
    rows = [[f"{prefix}test bpd (1000 test images, seeded dequantization, exact)", f"{last_tested(h)['test_bpd']:.4f}"],
            [f"{prefix}best test bpd during training (epoch)", f"{best['test_bpd']:.4f} ({best['epoch']})"]]
    return rows + _tail_rows(h, prefix)


def _tail_rows(h: List[Dict[str, Any]], prefix: str = "") -> List[List[str]]:
    """Train bpd, epochs and steps, epoch times of a history."""
    last, rows = h[-1], []
    secs = [r["seconds"] for r in h if isinstance(r.get("seconds"), (int, float))]
    if isinstance(last.get("train_bpd"), (int, float)):
        rows.append([f"{prefix}train bpd (last epoch, running mean)", f"{last['train_bpd']:.4f}"])
    rows.append([f"{prefix}epochs / optimizer steps", f"{last.get('epoch')} / {last.get('step')}"])
    if secs:
        rows.append([f"{prefix}epoch time: total (shortest - longest epoch)",
                     f"{sum(secs) / 60:.1f} min ({min(secs):.1f} - {max(secs):.1f} s)"])
    return rows


@block("training", needs_model=True)
def b_training(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """One model's numbers from the chain of runs behind its shipped weights: the training run's history,
    a fine-tune's, a refit of the latent prior (the recipe block has their commands)."""
    rel = history_rel(arg)
    h = res.history(rel)
    rels, rows = [rel], []
    sh = None if is_bound(arg) else shipped(res, arg)
    if is_bound(arg):
        if not model_data(arg).get("history_test_bpd_unused"):   # models.json: that column is not the model's bound
            rows.append(["test bpd bound at the last epoch (seed 0, one timestep per image)",
                         f"{last_tested(h)['test_bpd']:.4f}"])
        rows += _tail_rows(h)
    elif sh["step"] == "training":
        rows += _run_rows(h)
    else:
        if sh["step"] == "refit":
            r = res.json(refit_rel(arg))
            rows += [["test bpd of the shipped weights (fitted latent prior; exact)", f"{sh['bpd']:.4f}"],
                     ["test bpd with the N(0, I) prior (before the refit)", f"{sh['before'][0]:.4f}"],
                     ["fitted latent prior: components / rank / fitted on", f"{r.get('components')} (by "
                      f"{r.get('by')}) / {r.get('rank')} / {r.get('images')} training images (seed {r.get('seed')})"]]
        if res.exists(finetune_history_rel(arg)):
            ft = res.history(finetune_history_rel(arg))
            rels.append(finetune_history_rel(arg))
            rows += _run_rows(ft, "fine-tune: ")
        rows += _run_rows(h, "training run: ")
        if sh["step"] == "refit":
            rels.append(refit_rel(arg))
    kl = [r["mean_pair_kl_per_dim"] for r in h if isinstance(r.get("mean_pair_kl_per_dim"), (int, float))]
    if kl:
        rows.append(["largest mean pairwise KL per class and dimension", f"{max(kl):.1f}"])
    out = table(["metric", "value"], rows)
    note = noise_note(res, arg)
    if note:
        out += ["", note + "."]
    return out + res.sources(rels)


@block("bound", needs_model=True)
def b_bound(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """A diffusion model's test bound over seeds."""
    s, seed0, rel = bound_doc(res, arg)
    out = table(["test bpd upper bound", "value"],
                [[f"mean +- sd over seeds {min(res.json(rel)['seeds'])}-{max(res.json(rel)['seeds'])} "
                  f"({s['n']} seeds)", pm(s, 3)], ["seed 0 (what `nfzoo eval` prints by default)", f"{seed0:.4f}"]])
    out += ["", "Each seed draws other dequantization noise, timesteps and diffusion noise (one timestep per "
            "image): the bound is an estimate; a single seed can fall below its expectation."]
    return out + res.sources([rel])


@block("trajectory", needs_model=True)
def b_trajectory(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """Latent RMS and the test bound at a few epochs of a diffusion model's training."""
    rel = history_rel(arg)
    h = {r["epoch"]: r for r in res.history(rel)}
    last = max(h)
    rows = [[str(e), num(h[e].get("latent_rms"), 2), num(h[e].get("test_bpd"), 3)]
            for e in sorted({1, 10, last // 2, last}) if e in h]
    return table(["epoch", "latent RMS", "test bound (bpd, seed 0)"], rows) + res.sources([rel])


@block("glow-lr-schedule")
def b_glow_lr(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """A zoo Glow's cosine schedule against the same Glow at a constant learning rate (models.json names both
    runs)."""
    cfg = block_config("glow-lr-schedule")
    const_rel, zoo_rel = rel_results(cfg["constant"]), history_rel(cfg["model"])
    const, zoo = res.history(const_rel), {r["epoch"]: r for r in res.history(zoo_rel)}
    e = const[-1]["epoch"]
    rows = [["constant learning rate", str(e), num(const[-1].get("test_bpd"), 4), "-"],
            [f"cosine decay ({cfg['model']}'s training run)", str(e), num(zoo.get(e, {}).get("test_bpd"), 4),
             f"{last_tested(list(zoo.values()))['test_bpd']:.4f} (epoch {max(zoo)})"]]
    return table(["learning rate", "epoch", "test bpd at that epoch", "final"], rows) + res.sources(
        [const_rel, zoo_rel])


def _page_link(res: Results, name: str) -> str:
    """The model's name, linked to its page of the site (docs/pages/zoo/NAME.md) when it has a card."""
    card = res.root / "zoo" / "nfzoo_zoo" / "models" / name / "README.md"
    return f"[{name}](docs/pages/zoo/{name}.md)" if card.is_file() else name


@block("zoo-headline")
def b_zoo_headline(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """The README's short zoo table: each trained model's test bpd and, at its default sampling setting, its FID
    and recognisable share (the zoo-training and zoo-defaults blocks have the long form and every file)."""
    rows, others, noisy, bound, mixture = [], [], [], False, False
    for name in in_order(index):
        e = index[name]
        if e.get("kind", "flow") != "flow" or not res.exists(history_rel(name)):
            others.append(f"{name} ({e.get('kind', 'flow')}, {e.get('status', '-')})")
            continue
        if is_bound(name):
            bpd, bound = f"<= {pm(bound_doc(res, name)[0], 3)}", True
        else:
            bpd = f"{shipped(res, name)['bpd']:.4f}"
            mixture |= has_mixture(name)
        sampling, rel = sampling_default(res, name)
        setting, fid, recog = "-", "-", "-"
        if noise_sigma(res, name) > 0:
            bpd += " (clean images)"
            noisy.append(f"{name} ({noise_sigma(res, name):g})")
        if rel:
            s = sample_summary(res, rel)
            opts = sampling.get("options") or {}
            label = sampler_label({"sampler": sampling.get("sampler"), **opts, "sampler_options": ",".join(opts)})
            setting = f"{label}, T={float(sampling.get('temperature', 1.0)):g} ({s['per_seed']} x {len(s['seeds'])})"
            fid, recog = pm(s["summary"]["fid"], 2), pm(s["summary"].get("recognisable"), 1, True)
        rows.append([_page_link(res, name), e.get("architecture", "-"), bpd, setting, fid, recog])
    out = table(["model", "architecture", "test bpd", "default sampling (samples x seeds)", "FID", "recognisable"],
                rows)
    notes = ["Test bpd on the 1000 mnist5k test images, of the weights that ship"]
    if bound:
        notes.append("\"<=\": a diffusion model's upper bound, mean +- sd over seeds")
    if mixture:
        notes.append("GLEM's is that of p(x given y)")
    if noisy:
        notes.append(f"{', '.join(noisy)}: trained on images + gaussian noise of that sigma, measured on the "
                     "clean images")
    out += [""] + [n + (";" if i < len(notes) - 1 else ".") for i, n in enumerate(notes)]
    out += ["FID (oracle-mnist5k features, against the test images) and the share of samples the oracle "
            "recognises: mean +- sd over seeds, at the model's default setting."]
    if others:
        out += ["", "Also in the zoo: " + ", ".join(others) + "."]
    return out + ["", "Each number's result files: the model's page and the `sources` column of "
                  "`docs/results/zoo.csv`, rendered from the same files."]


@block("zoo-pages")
def b_zoo_pages(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """Every entry of the zoo's index, linked to its page: architecture, data set, status, description."""
    rows = [[_page_link(res, name), index[name].get("architecture", "-"), index[name].get("dataset", "-"),
             index[name].get("status", "-"), index[name].get("description", "")] for name in in_order(index)]
    return table(["model", "architecture", "data set", "status", "description"], rows) + [
        "", "From `zoo/nfzoo_zoo/index.json`: the numbers of its descriptions are rendered from the result files "
        f"by `{TOOL}`, as the pages' are."]
