"""`nfzoo eval`: a model on a data set's split: exact bpd or likelihood classification, the sample metrics
(FID, Coverage, Density), and the evaluation tasks plugins register (`register_eval_tasks`)."""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from ..toolkit import (
    MAX_BATCH,
    MAX_NPROC,
    MAX_SAMPLES,
    MAX_STEPS,
    err,
    finite,
    load_model,
    out,
    parse_device,
    parse_sets,
    print_json,
    progress_task,
    rich_progress,
    sampler_option,
    sampler_options,
    seed_option,
    temperature_option,
)
from .ranks import command_argv, launch_ranks, rank_context
from .sample import warning

TASKS = ("bpd", "classify")        # the core's; plugins add theirs through register_eval_tasks
FEATURE_EXTRACTORS = ("oracle", "inception")


def eval_cmd(ctx: typer.Context, model: str = typer.Argument(..., help="pretrained name or model directory"),
             dataset: str = typer.Option(..., "--dataset", "-d", help="data set (its test split)"),
             task: str = typer.Option("bpd", "--task", help="bpd | classify, or a task a plugin registers (`nfzoo "
                                      "plugins` lists them: cnn-a, augment, anonymize, ood with nfzoo-heads)"),
             sets: List[str] = typer.Option([], "--set", help="KEY=VALUE options of a plugin's task, e.g. "
                                            "--set epochs=4 --set box=8,8,20,20"),
             split: str = typer.Option("test", "--split", help="test or train"),
             batch_size: int = typer.Option(500, "--batch-size", min=1, max=MAX_BATCH),
             seed: int = seed_option(0, "seed of the dequantization noise and the samples"),
             samples: int = typer.Option(0, "--samples", min=0, max=MAX_SAMPLES, help="also draw N samples and "
                                         "report FID, Coverage, Density and the recognisable share against "
                                         "the split (0: off)"),
             seeds: int = typer.Option(1, "--seeds", min=1, max=100, help="draw the N samples this many times "
                                       "(seeds SEED, SEED+1, ...) and report each metric as mean +- sd"),
             out_file: Optional[Path] = typer.Option(None, "--out", help="also write the result as JSON to "
                                                     "this file, with the command, date and commit that "
                                                     "measured it"),
             oracle: Optional[str] = typer.Option(None, "--oracle", help="oracle directory (`nfzoo "
                                                  "train-oracle`) whose features the sample metrics use "
                                                  "[mnist5k: the zoo's oracle-mnist5k]"),
             features: str = typer.Option("oracle", "--features", help="oracle | inception (torchvision's "
                                          "weights, only if already in the torch hub cache)"),
             temperature: float = temperature_option("sampling temperature"),
             sampler: Optional[str] = typer.Option(None, "--sampler", help="a registered sampler for "
                                                   "--samples (e.g. rfcm for GLEM models)"),
             steps: Optional[int] = typer.Option(None, "--steps", min=1, max=MAX_STEPS,
                                                 help="sampler steps (diffusion samplers)"),
             eta: Optional[float] = typer.Option(None, "--eta", callback=finite(0, 1), help="DDIM noise scale "
                                                 "for --samples: 0 deterministic [default], 1 ancestral over "
                                                 "the same steps"),
             sampler_opts: List[str] = sampler_option(),
             k: int = typer.Option(5, "--k", min=1, max=10_000, help="nearest neighbours for Coverage and "
                                   "Density"),
             data_root: Optional[str] = typer.Option(None, "--data-root"),
             device: Optional[str] = typer.Option(None, "--device"),
             nproc: int = typer.Option(1, "--nproc", min=1, max=MAX_NPROC, help="processes on this host "
                                       "(launches torchrun): the test set and the samples are split across them"),
             compile_: bool = typer.Option(False, "--compile", help="torch.compile the flow (its first call "
                                           "compiles; where it cannot, a warning says why and it runs eager)"),
             json_: bool = typer.Option(False, "--json", help="print JSON")):
    """Evaluate a model on a data set's test split: exact bpd (or likelihood classification accuracy),
    and with --samples N the FID, Coverage and Density of N samples against that split. Under torchrun
    (or with --nproc N) the bpd and the samples are computed in shards, and rank 0 reports."""
    from nfzoo.distributed import env_world
    from nfzoo.errors import UnknownNameError, UsageError
    from nfzoo.registry.plugins import get_registry

    if nproc != 1:
        parse_device(device)
        return launch_ranks(nproc, command_argv(ctx))
    if env_world() > 1 and task not in ("bpd",):
        raise UsageError(f"--task {task} runs on one process; only --task bpd (with --samples) is sharded "
                         "across processes: drop --nproc / torchrun")

    plugin_tasks = get_registry().registry("eval_tasks")
    if task not in TASKS and task not in plugin_tasks:
        raise UnknownNameError("eval task", task, [*TASKS, *plugin_tasks])
    if task in plugin_tasks:
        return _plugin_task(plugin_tasks[task].load(), task, model, dataset, sets, samples, temperature,
                            sampler, steps, eta, oracle, seed, data_root, device, json_, compile_)
    if sets:
        raise UsageError(f"--set is for the tasks plugins register ({', '.join(plugin_tasks) or 'none installed'}), "
                         f"not for --task {task}")
    if features not in FEATURE_EXTRACTORS:
        raise UnknownNameError("feature extractor", features, FEATURE_EXTRACTORS)
    if samples == 1:
        raise UsageError(f"--samples must be 0 (off) or >= 2, got {samples}")
    dev = parse_device(device)
    dist = rank_context(dev)
    main_rank = dist is None or dist.is_main
    from nfzoo.data import load_dataset
    from nfzoo.errors import ConfigError
    from nfzoo.flows.pipeline import SamplingPipeline, compile_model

    m = load_model(model, dev)
    if compile_:
        compile_model(m, "eval", warning if main_rank else None)
    pipe = None
    if samples:                     # the sampler, its options and temperature, checked before any long work
        pipe = SamplingPipeline(m, sampler, temperature, sampler_options(m, steps, eta, sampler_opts, sampler),
                                name=model)
        temperature = pipe.temperature
    if dataset.startswith("folder:"):   # the folder's images made to the model's channels and size
        from pathlib import Path

        from nfzoo.data import load_folder_for_shape
        from nfzoo.training.config import load_train_config

        run = Path(model)        # a training run on this folder: its data options (the same held-out images)
        data = load_train_config(run).data if (run / "train.json").is_file() else {}
        ds = load_folder_for_shape(dataset[len("folder:"):], split, m.image_shape, **data)
    else:
        ds = load_dataset(dataset, split, data_root)
    if tuple(ds.image_shape) != m.image_shape:
        raise ConfigError(f"{model} takes images of shape {list(m.image_shape)} but {dataset} has "
                          f"{list(ds.image_shape)}")
    if samples and k >= len(ds):
        raise UsageError(f"--k must be below the number of images in {dataset}/{split} ({len(ds)})")
    net, oracle_from = None, None   # the oracle (OracleNet), and where it came from
    if samples:
        # the feature extractor is settled before any long work starts (a bad --oracle exits 2 at once)
        from nfzoo.evaluation.oracle import default_oracle, find_oracle

        if features == "inception":   # an --oracle then only gives the label reliability
            from nfzoo.evaluation.inception import require_inception_weights

            require_inception_weights()
        elif oracle is None and default_oracle(dataset) is None:
            raise UsageError(f"the sample metrics on {dataset!r} need --oracle DIR (an oracle trained "
                             f"on it: `nfzoo train-oracle --dataset {dataset} --out DIR`) or "
                             "--features inception")
        if oracle is not None or features == "oracle":
            net, oracle_from = find_oracle(oracle, dataset, device=dev)
            if tuple(net.image_shape) != m.image_shape:
                raise ConfigError(f"the oracle {oracle_from} takes images of shape {list(net.image_shape)} "
                                  f"but {model} makes {list(m.image_shape)}")
    with rich_progress(disable=not main_rank) as prog:
        progress = progress_task(prog, f"{task} on {dataset}/{split}", total=len(ds))
        from nfzoo.evaluation.bpd import evaluate_bpd, evaluate_classification

        if task == "bpd":
            res = evaluate_bpd(m, ds, batch_size, seed=seed, progress=progress, dist=dist)
        else:
            res = evaluate_classification(m, ds, batch_size, progress=progress)
        if samples:
            from nfzoo.evaluation.metrics import evaluate_samples, evaluate_samples_over_seeds

            progress = progress_task(prog, f"{samples} samples x {seeds} seed(s) vs {dataset}/{split}")
            kwargs: Dict[str, Any] = dict(oracle=net, feature_extractor=features, k=k, progress=progress,
                                          pipeline=pipe, dist=dist)
            if seeds == 1:
                sres = evaluate_samples(m, ds, samples, seed=seed, **kwargs)
            else:
                sres = evaluate_samples_over_seeds(m, ds, samples, range(seed, seed + seeds), **kwargs)
    if dist is not None:   # as in sample: leave together, process group shut down, before rank 0 prints
        dist.barrier()
        dist.close()
    if not main_rank:
        return
    doc = {"model": model, "dataset": dataset, "split": split, "task": task, **res}
    if samples:
        assert pipe is not None and sres is not None, "--samples: the pipeline is built; rank 0 has the metrics"
        doc.update({"oracle": oracle_from, "sampler": pipe.sampler.name, **sres})
        doc.update(pipe.options)       # every sampler option at the top level; their names listed, so the
        doc["sampler_options"] = ",".join(sorted(pipe.options))   # document stays flat (nfzoo.evaluation.results)
        if sres["nonfinite_samples"]:
            err.print(f"[yellow]warning:[/] {sres['nonfinite_samples']} of {sres['n_samples']} samples had "
                      "non-finite pixels and were left out of the metrics", highlight=False)
    if out_file is not None:
        import shlex

        from nfzoo.evaluation.results import write_result

        write_result(out_file, doc, shlex.join(["nfzoo", *command_argv(ctx, drop=("out_file", "json_"))]))
    if json_:
        print_json(doc)
        return
    key = "bpd" if task == "bpd" else "accuracy"
    line = f"{model} on {dataset}/{split}: {key} = {res[key]:.4f} ({res['images']} images)"
    if "bpd_marginal" in res:
        line += f"; bpd of the class mixture p(x) = {res['bpd_marginal']:.4f}"
    out.print(line)
    if samples:
        out.print(_samples_line(sres, samples, seeds, temperature, k), highlight=False)
    if out_file is not None:
        out.print(f"wrote {out_file}", highlight=False)


def _samples_line(sres, samples: int, seeds: int, temperature: float, k: int) -> str:
    """The sample metrics in one line: values for one seed, mean +- sd over several."""
    if seeds == 1:
        def val(key, fmt):
            return format(sres[key], fmt)
        head = f"{samples} samples (T={temperature:g})"
    else:
        def val(key, fmt):
            s = sres["summary"][key]
            return f"{format(s['mean'], fmt)} +- {format(s['sd'], fmt)}"
        head = f"{samples} samples x {seeds} seeds (T={temperature:g}; mean +- sd)"
    line = (f"{head} vs {sres['n_real']} images, {sres['features']} features: FID = {val('fid', '.4f')}, "
            f"coverage = {val('coverage', '.4f')}, density = {val('density', '.4f')} (k={k})")
    if "recognisable" in sres or "recognisable" in sres.get("summary", {}):
        line += (f", recognisable (oracle p >= 0.9) = {val('recognisable', '.3f')} "
                 f"(real images: {sres['recognisable_real']:.3f})")
    if "label_reliability" in sres or "label_reliability" in sres.get("summary", {}):
        line += f", label reliability = {val('label_reliability', '.4f')}"
    return line + f"; non-finite samples: {sres['nonfinite_samples']} of {sres['n_samples']}"


def _fixed_arguments() -> tuple:
    """The arguments every eval task receives (nfzoo.registry.hookspecs.EvalTask), which --set cannot give."""
    from nfzoo.registry.hookspecs import EvalTask

    params = inspect.signature(EvalTask.__call__).parameters
    return tuple(p for p, v in params.items() if p != "self" and v.kind != v.VAR_KEYWORD)


def _plugin_task(fn, task, model, dataset, sets, samples, temperature, sampler, steps, eta, oracle, seed,
                 data_root, device, json_, compile_=False):
    """Run a registered eval task as nfzoo.registry.hookspecs.EvalTask describes: its options from --set, and
    --samples (as n), --temperature, --steps, --eta, --oracle when given."""
    from nfzoo.errors import UsageError

    options = parse_sets(sets)
    for key, value, default in (("n", samples, 0), ("temperature", temperature, None), ("steps", steps, None),
                                ("eta", eta, None), ("oracle", oracle, None)):
        if value != default:
            options[key] = value
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    fixed = _fixed_arguments()
    own = [p for p in params if p not in fixed and params[p].kind != params[p].VAR_KEYWORD]
    unknown = [k for k in options if k not in params or k in fixed]
    if unknown and not takes_any:
        raise UsageError(f"--task {task} has no option(s) {', '.join(unknown)}; its options: {', '.join(own)} "
                         "(--samples sets n)")
    from nfzoo.flows.pipeline import compile_model

    dev = parse_device(device)
    m = load_model(model, dev, sampler)
    if compile_:
        compile_model(m, "eval", warning)
    with rich_progress() as prog:
        bar = prog.add_task(task, total=None)

        def progress(stage, done, total):
            prog.update(bar, description=stage, completed=done, total=total)
        doc = fn(m, dataset, seed=seed, data_root=data_root, device=dev, progress=progress, model_name=model,
                 **options)
    doc = {"model": model, "dataset": dataset, **doc}
    summary = doc.pop("summary", [])
    if json_:
        print_json(doc)
        return
    out.print(f"{model}, --task {task} on {dataset}:", highlight=False)
    for line in summary:
        out.print("  " + line, highlight=False)


def register(app: typer.Typer) -> None:
    """Add `eval` to `app`."""
    app.command("eval")(eval_cmd)
