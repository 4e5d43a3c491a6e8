"""Every published number from the file that measured it: render the generated blocks of README.md, of the
zoo's model cards and of the documentation site's pages (docs/pages), the site's generated pages (one per zoo
model, from its card) and the copies they show, and the metrics of zoo/nfzoo_zoo/index.json, from the result
files under docs/results.

    .venv/bin/python zoo/tools/render_docs.py            # rewrite whatever differs from the files
    .venv/bin/python zoo/tools/render_docs.py --check    # change nothing; exit 1 with a unified diff if stale

(`python -m nfzoo_docs.render_docs [--check]` is the same command.) A generated block sits between two
markers, in Markdown

    <!-- nfzoo:generated BLOCK-ID (zoo/tools/render_docs.py; do not edit) -->
    ...
    <!-- nfzoo:end -->

and in a card's YAML front matter (the `metrics:` list and the `model-index`) between the comment lines
`# nfzoo:generated model-index:NAME (zoo/tools/render_docs.py; do not edit)` and `# nfzoo:end`. Only what is
between markers is rewritten; BLOCKS (registry.py, filled by the block modules' `@block(ID)`) holds the ids
(`ID` or `ID:MODEL`). In index.json each entry's "metrics" are rewritten from the same files, the numbers in
its "description" that DESCRIPTION_NUMBERS knows are re-rendered, and the sha256 pin of a card is refreshed
after the card changes (update_index's pin_files). Every block names its files; a file with a "measured_by"
record (nfzoo.evaluation.results.write_result, `nfzoo eval ... --out`) shows its date, commit and command; an older file
without one shows the command known from its card (models.json "legacy", valid only while the file's sha256
is the one recorded there). Stochastic numbers come as mean +- sd over the seeds a file holds, with their
number. Torch is never imported.

What the renderer knows about the zoo's models (their order in the tables, the architectures whose bpd is a
bound, GLEM's runs, the older files' provenance, the files of one-off studies) is data: models.json beside
this package's modules (knowledge.py reads it). A new zoo model needs its line in models.json's "order", not
code.

The shipped weights of a zoo model come through a chain of recorded steps, each with its file (MODEL: the zoo
name): the training run (docs/results/MODEL-history.json, and its train.json as MODEL-train.json), a fine-tune
(MODEL-finetune-history.json, MODEL-finetune-train.json: `nfzoo train ... --init MODEL`), a refit of the latent
prior (MODEL-refit.json: `nfzoo refit-prior`). The model's test bpd is that of the last step there is (the
refit's test_bpd_after, shown beside its test_bpd_before "with the N(0, I) prior"; else the fine-tune's last
test bpd; else the training run's), and the recipe is the chain of their commands. A model with noise_sigma > 0
in its config.json says that its bpd is on clean data and that it was trained on noisy data.

Sample quality comes from docs/results/samples/MODEL/SAMPLER-tT.json (written by `nfzoo eval MODEL --dataset
mnist5k --samples N --seeds S -t T --out FILE`): one row per file; no file, no row; a flow's file whose test
bpd differs from the shipped weights' (above; by more than 1e-3) measured other weights and is refused. The
setting in the model's config.json "sampling" (docs/results/samples/sweep.py --choose) is marked as the
default, and the README's zoo table gives each model's default setting beside its test bpd. GLEM's NF-A
comes from docs/results/MODEL-classify.json (`nfzoo eval MODEL --dataset mnist5k --task classify --out
FILE`) when present. tests/test_generated_docs.py runs --check.

The site (mkdocs, `docs_dir: docs/pages`; site.py): a page of docs/pages has its blocks rendered in place as
README.md has, with the blocks' links made the page's (a link out of docs/pages would fail `mkdocs build
--strict`: a picture or Markdown file of docs/results becomes a link to its copy under docs/pages/results/files,
anything else its repository path in code); docs/pages/zoo/MODEL.md is generated whole from the model's
rendered card; a stale generated page or copy is removed. Only a tree with a docs/pages folder has a site.

The modules: knowledge (models.json), results (the files, markers, formatting), chain (a model's chain of
steps), samples (sample-quality files), registry (the blocks), blocks_* (one per family of blocks: zoo,
samples, glem, diffusion, heads, speed, papers), metrics (the index's metrics, the cards' model-index),
site (the site's pages, links and copies), documents (README, cards, pages, index, zoo.csv), cli (the command
line).
"""
from .registry import BLOCKS, NEEDS_MODEL, block, load_blocks, render_block

load_blocks()   # every block module registers its blocks

from .blocks_papers import PAPER_TABLES  # noqa: E402
from .chain import (  # noqa: E402
                    bound_doc,
                    bpd_cell,
                    check_fresh,
                    exact_bpd,
                    finetune_history_rel,
                    glem_numbers,
                    history_rel,
                    last_tested,
                    legacy_command,
                    legacy_glem_eval,
                    noise_note,
                    noise_sigma,
                    recipe,
                    refit_rel,
                    shipped,
                    train_command,
                    train_rel,
                    zoo_config,
)
from .cli import main  # noqa: E402
from .documents import (  # noqa: E402
                    ROOT,
                    ZOO_CSV,
                    ZOO_CSV_COLUMNS,
                    generated_blocks,
                    render,
                    render_text,
                    render_with_zoo_csv,
                    update_index,
                    zoo_csv,
)
from .knowledge import (  # noqa: E402
                    BOUND_ARCHS,
                    LEGACY,
                    MIXTURE_ARCHS,
                    ORDER,
                    block_config,
                    has_mixture,
                    in_order,
                    is_bound,
                    model_data,
                    models_json,
)
from .metrics import DESCRIPTION_NUMBERS, describe, model_index, model_metrics, sample_metric_keys, stem_key  # noqa: E402
from .results import (  # noqa: E402
                    BENCH_DIFFUSION,
                    BPD_TOL,
                    FID_SEEDS,
                    MD_BLOCK,
                    RESULTS,
                    TOOL,
                    YAML_BLOCK,
                    RenderError,
                    Results,
                    bench_rows,
                    block_commit,
                    fid_seeds,
                    num,
                    pct,
                    pm,
                    rel_results,
                    short_commit,
                    table,
)
from .samples import (  # noqa: E402
                    SAMPLE_KEYS,
                    accuracy_file,
                    default_line,
                    reference_files,
                    sample_summary,
                    sampler_label,
                    sampling_default,
)
from .site import FILES, GENERATED_PAGE, PAGES, broken_links, is_generated, page_documents, site_links  # noqa: E402

__all__ = [
    # the registry and the command line
    "BLOCKS", "NEEDS_MODEL", "block", "load_blocks", "render_block", "main",
    # the documents
    "ROOT", "ZOO_CSV", "ZOO_CSV_COLUMNS", "generated_blocks", "render", "render_text", "render_with_zoo_csv",
    "update_index", "zoo_csv", "DESCRIPTION_NUMBERS", "describe", "model_index", "model_metrics",
    "sample_metric_keys", "stem_key", "PAPER_TABLES",
    # what models.json says
    "BOUND_ARCHS", "LEGACY", "MIXTURE_ARCHS", "ORDER", "block_config", "has_mixture", "in_order", "is_bound",
    "model_data", "models_json",
    # the files and their readers
    "BENCH_DIFFUSION", "BPD_TOL", "FID_SEEDS", "MD_BLOCK", "RESULTS", "TOOL", "YAML_BLOCK", "RenderError",
    "Results", "bench_rows", "block_commit", "fid_seeds", "num", "pct", "pm", "rel_results", "short_commit",
    "table", "bound_doc", "bpd_cell", "check_fresh", "exact_bpd", "finetune_history_rel", "glem_numbers",
    "history_rel", "last_tested", "legacy_command", "legacy_glem_eval", "noise_note", "noise_sigma", "recipe",
    "refit_rel", "shipped", "train_command", "train_rel", "zoo_config", "SAMPLE_KEYS", "accuracy_file",
    "default_line", "reference_files", "sample_summary", "sampler_label", "sampling_default",
    # the site
    "FILES", "GENERATED_PAGE", "PAGES", "broken_links", "is_generated", "page_documents", "site_links",
]
