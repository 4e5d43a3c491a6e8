"""Every published number comes from the file that measured it (issue 22): zoo/tools/render_docs.py, run in
check mode, finds README.md, the zoo's model cards, the documentation site's pages (docs/pages: the pages with
blocks, the zoo models' pages generated from their cards, the copies of docs/results files they show; issue 37)
and zoo/nfzoo_zoo/index.json exactly as the result files under docs/results give them; the site's pages link
only inside docs/pages; every generated block names files that exist; a number edited by hand inside a
block fails the check (on a copy); sample-quality files (fixtures in tests/fixtures/results, written as
`nfzoo eval ... --out` writes them) become rows of the tables, metrics of the index and of the cards'
model-index, with the cards' sha256 pins refreshed; and a zoo model's chain of recorded steps (training run,
fine-tune, refit of the latent prior; fixtures in tests/fixtures/chain, laid out like the repository) gives
the test bpd of the weights that ship, the recipe, the check of the sample files, the default sampling
setting of the tables and of the model-index, and the README's zoo table at the default settings."""
import hashlib
import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "results"
CARDS = sorted((ROOT / "zoo" / "nfzoo_zoo" / "models").glob("*/README.md"))
ZOO_PAGE = "docs/pages/zoo/index.md"                      # the zoo's training table (zoo-training)
SAMPLES_PAGE = "docs/pages/results/sample-quality.md"     # the zoo-defaults and samples tables
SITE_DIRS = ("docs/pages/zoo", "docs/pages/results")      # the site's pages the renderer writes or renders
PATH_IN_BLOCK = re.compile(r"`((?:docs/results|zoo)/[^`\s]+)`|source ((?:docs/results|zoo)/[\w./+-]*\w)")


def _renderer():
    spec = importlib.util.spec_from_file_location("render_docs", ROOT / "zoo" / "tools" / "render_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


R = _renderer()


CHAIN = Path(__file__).resolve().parent / "fixtures" / "chain"
# what the chain of issue 22 adds to docs/results (removed for the tests that start from the tree before it)
NEW_FILES = ("*-refit.json", "*-finetune-history.json", "*-finetune-train.json", "*-classify.json",
             "samples/*/*.json", "glow-mnist5k-train.json")
# before the chain, descriptions quote no measured number (glem-mnist5k's quotes NF-A and its RFCM label
# reliability, whose files are the chain's)
PLAIN_DESCRIPTIONS = {"glem-mnist5k": "GLEM on mnist5k: class gaussians on a Glow"}


def _copy_tree(dst: Path, before_chain: bool = False) -> Path:
    """What the renderer reads and writes, copied under dst: README.md, the index, the cards and configs,
    docs/results, the site's zoo and results pages. before_chain: without the files the chain adds (NEW_FILES,
    the configs' "sampling"), so that a test's fixtures make the only chain there is."""
    shutil.copy2(ROOT / "README.md", dst / "README.md")
    for folder in SITE_DIRS:
        shutil.copytree(ROOT / folder, dst / folder)
    (dst / "zoo" / "nfzoo_zoo").mkdir(parents=True)
    index = json.loads((ROOT / "zoo" / "nfzoo_zoo" / "index.json").read_text())
    if before_chain:
        for name, text in PLAIN_DESCRIPTIONS.items():
            index["models"][name]["description"] = text
    (dst / "zoo" / "nfzoo_zoo" / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    for card in CARDS:
        (dst / card.relative_to(ROOT)).parent.mkdir(parents=True)
        shutil.copy2(card, dst / card.relative_to(ROOT))
        config = card.parent / "config.json"
        if config.is_file():
            doc = json.loads(config.read_text())
            if before_chain:
                doc.pop("sampling", None)
            (dst / config.relative_to(ROOT)).write_text(json.dumps(doc, indent=2) + "\n")
    shutil.copytree(ROOT / "docs" / "results", dst / "docs" / "results")
    if before_chain:
        for pattern in NEW_FILES:
            for f in (dst / "docs" / "results").glob(pattern):
                f.unlink()
        for d in (dst / "docs" / "results" / "samples").glob("*"):
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
    return dst


def _chain_tree(dst: Path) -> Path:
    """The tree before the chain, then the chain's fixtures (tests/fixtures/chain, laid out like the
    repository): glow-mnist5k fine-tuned (95 + 3 epochs) and refitted, its config with the scale floor and
    the default setting ancestral at T=0.7; inverse-flow-mnist5k trained anew with noise_sigma 0.4 and
    refitted; their sample-quality files."""
    root = _copy_tree(dst, before_chain=True)
    shutil.copytree(CHAIN, root, dirs_exist_ok=True)
    return root


def _block(root: Path, where: str, block_id: str) -> str:
    return dict(R.generated_blocks((root / where).read_text()))[block_id]


def _diff_text(diffs):
    return "".join(diffs)[:4000] + "\n(run `.venv/bin/python zoo/tools/render_docs.py` and commit what it writes)"


def test_readme_cards_and_index_match_their_result_files():
    diffs, warnings = R.render(ROOT, write=False)
    assert not diffs, _diff_text(diffs)
    assert not warnings, warnings


def _site_pages():
    """Every Markdown page of the site's zoo and results folders (rendered in place or generated whole)."""
    return sorted(p for d in SITE_DIRS for p in (ROOT / d).rglob("*.md"))


def test_every_generated_block_names_existing_files():
    documents = [ROOT / "README.md", *CARDS, *R.page_documents(ROOT)]
    seen = set()
    for doc in documents:
        for block_id, body in R.generated_blocks(doc.read_text()):
            seen.add(block_id.split(":")[0])
            paths = [a or b for a, b in PATH_IN_BLOCK.findall(body)]
            if re.search(r"\d", body.replace("mnist5k", "")) and not body.startswith("\nNo sample-quality"):
                assert paths, f"{doc.relative_to(ROOT)}: block {block_id} shows numbers but names no file"
            for p in paths:
                assert (ROOT / p).exists(), f"{doc.relative_to(ROOT)}: block {block_id} names {p}, which is missing"
    # the README, the cards and the pages use every kind of block the renderer has (none is dead code)
    assert seen >= set(R.BLOCKS) | {"model-index"}, set(R.BLOCKS) - seen


def test_the_readme_and_the_results_say_how_the_numbers_are_made():
    text = (ROOT / "README.md").read_text()
    assert ".venv/bin/python zoo/tools/render_docs.py" in text and "tests/test_generated_docs.py" in text
    results = (ROOT / "docs/pages/results/index.md").read_text()
    assert "## How the numbers are made" in results and ".venv/bin/python zoo/tools/render_docs.py --check" in results
    for page in _site_pages():
        assert "session" not in page.read_text().lower(), page.relative_to(ROOT)


def test_every_card_has_its_page_and_the_zoo_links_them():
    """docs/pages/zoo/MODEL.md for every card, generated whole from it (no front matter, no markers), linked
    from the zoo's page; the results' index links each results page."""
    zoo = (ROOT / ZOO_PAGE).read_text()
    for card in CARDS:
        name = card.parent.name
        page = (ROOT / "docs/pages/zoo" / f"{name}.md").read_text()
        assert R.is_generated(page) and f"zoo/nfzoo_zoo/models/{name}/README.md" in page.splitlines()[0]
        assert f"\n# {name}" in page and "nfzoo:generated" not in page and "model-index:" not in page
        assert f"]({name}.md)" in zoo
    index = (ROOT / "docs/pages/results/index.md").read_text()
    for page in sorted((ROOT / "docs/pages/results").glob("*.md")):
        assert page.name == "index.md" or f"]({page.name})" in index, page.name


def test_the_site_links_only_inside_its_pages():
    """What `mkdocs build --strict` needs of these pages: every relative link and picture names a file under
    docs/pages (a copy, for the pictures and papers' tables of docs/results), and every copy is its file's."""
    pages = [(p.relative_to(ROOT).as_posix(), p.read_text()) for p in _site_pages()]
    assert len(pages) >= len(CARDS) + 10
    assert R.broken_links(ROOT, pages) == []
    copies = [p for p in (ROOT / R.FILES).rglob("*") if p.is_file()]
    assert any(p.suffix == ".png" for p in copies) and any(p.suffix == ".md" for p in copies)
    for copy in copies:
        source = ROOT / "docs/results" / copy.relative_to(ROOT / R.FILES)
        if copy.suffix == ".png":
            assert copy.read_bytes() == source.read_bytes(), copy.relative_to(ROOT)


def test_a_blocks_links_become_the_pages():
    root = ROOT
    text = ("[a table](docs/results/papers/table1_glem_baselines.md), [a page](docs/pages/zoo/glow-mnist5k.md#use), "
            "![a grid](docs/results/glow-mnist5k-curve.png), [a file](docs/results/bench-train.json), "
            "[out](https://example.org/x), `[not a link](docs/x.md)`")
    got = R.site_links(root, text, "docs/pages/results/fidelity.md")
    assert got == ("[a table](files/papers/table1_glem_baselines.md), [a page](../zoo/glow-mnist5k.md#use), "
                   "![a grid](files/glow-mnist5k-curve.png), a file (`docs/results/bench-train.json`), "
                   "[out](https://example.org/x), `[not a link](docs/x.md)`")


def test_a_stale_page_or_copy_fails_the_check(tmp_path):
    """A generated page edited by hand, a copy missing or changed, a copy nothing links to and a model page
    without its card: each a difference; rendering puts the tree back."""
    root = _copy_tree(tmp_path)
    assert R.render(root, write=False)[0] == []
    page = root / "docs/pages/zoo/glow-mnist5k.md"
    good = page.read_text()
    page.write_text(good.replace("# glow-mnist5k", "# glow", 1))
    copy = root / R.FILES / "glow-mnist5k-curve.png"
    copy.unlink()
    (root / R.FILES / "orphan.png").write_bytes(b"png")
    (root / "docs/pages/zoo/gone-mnist5k.md").write_text(R.GENERATED_PAGE.format(
        source="zoo/nfzoo_zoo/models/gone-mnist5k/README.md", tool=R.TOOL) + "\n")
    diffs, _ = R.render(root, write=False)
    text = "".join(diffs)
    assert len(diffs) == 4 and "b/docs/pages/zoo/glow-mnist5k.md" in text and "glow-mnist5k-curve.png" in text
    assert "orphan.png" in text and "gone-mnist5k.md" in text
    assert R.main(["--check", "--root", str(root)]) == 1
    R.render(root, write=True)
    assert page.read_text() == good and copy.read_bytes() == (ROOT / R.FILES / "glow-mnist5k-curve.png").read_bytes()
    assert not (root / R.FILES / "orphan.png").exists() and not (root / "docs/pages/zoo/gone-mnist5k.md").exists()
    assert R.render(root, write=False)[0] == []


def test_a_tree_without_the_site_renders_without_it(tmp_path):
    """A copy of the tree without docs/pages (as some tests make) renders README, cards and index only."""
    root = _copy_tree(tmp_path)
    shutil.rmtree(root / "docs/pages")
    assert R.render(root, write=False)[0] == [] and not (root / "docs/pages").exists()


@pytest.mark.parametrize("where", ["README.md", "zoo/nfzoo_zoo/models/glow-mnist5k/README.md",
                                   "zoo/nfzoo_zoo/models/ddpm-mnist5k/README.md", ZOO_PAGE, SAMPLES_PAGE,
                                   "docs/pages/results/speed.md"])
def test_a_number_edited_by_hand_fails_the_check(tmp_path, where):
    root = _copy_tree(tmp_path)
    assert R.render(root, write=False)[0] == []
    path = root / where
    text = path.read_text()
    block = next(m for m in list(R.MD_BLOCK.finditer(text)) + list(R.YAML_BLOCK.finditer(text))
                 if re.search(r"\d\.\d", m.group("body")))
    body = block.group("body")
    number = re.search(r"(?<![\w.])\d+\.\d+", body)   # the first decimal number of the block
    edited = body[:number.start()] + str(round(float(number.group()) + 1, 4)) + body[number.end():]
    path.write_text(text[:block.start("body")] + edited + text[block.end("body"):])
    diffs, _ = R.render(root, write=False)
    assert diffs and where in diffs[0], "an edited number went unnoticed"
    assert R.main(["--check", "--root", str(root)]) == 1
    R.render(root, write=True)                      # rendering puts the file's number back
    assert path.read_text() == text and R.render(root, write=False)[0] == []


def test_an_edited_index_metric_or_card_pin_fails_the_check(tmp_path):
    root = _copy_tree(tmp_path)
    index_path = root / "zoo" / "nfzoo_zoo" / "index.json"
    index = json.loads(index_path.read_text())
    index["models"]["glow-mnist5k"]["metrics"]["test_bpd"] = 1.23
    index["models"]["nsf-mnist5k"]["files"]["README.md"] = "0" * 64
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    diffs, _ = R.render(root, write=False)
    assert len(diffs) == 1 and '"test_bpd": 1.23' in diffs[0] and "0" * 64 in diffs[0]
    R.render(root, write=True)
    fixed = json.loads(index_path.read_text())["models"]
    assert fixed["glow-mnist5k"]["metrics"]["test_bpd"] == json.loads(
        (ROOT / "zoo/nfzoo_zoo/index.json").read_text())["models"]["glow-mnist5k"]["metrics"]["test_bpd"]
    card = root / "zoo/nfzoo_zoo/models/nsf-mnist5k/README.md"
    assert fixed["nsf-mnist5k"]["files"]["README.md"] == hashlib.sha256(card.read_bytes()).hexdigest()


def test_sample_files_become_rows_metrics_and_pins(tmp_path):
    root = _copy_tree(tmp_path, before_chain=True)
    shutil.copytree(FIXTURES / "samples", root / "docs" / "results" / "samples", dirs_exist_ok=True)
    diffs, _ = R.render(root, write=True)
    assert diffs and R.render(root, write=False)[0] == []          # written once, then up to date
    glow_rel = "docs/results/samples/glow-mnist5k/ancestral-t0.7.json"
    samples = _block(root, SAMPLES_PAGE, "samples")
    # glow: 3 seeds, mean +- sd (sd with ddof 1), where the file came from and what measured it
    assert "| glow-mnist5k | ancestral | 0.7 | 45.20 +- 1.10 | 0.165 +- 0.007 |" in samples
    assert f"| 1 / 3000 | `{glow_rel}` (1000 x 3; 2031-01-02, 0123456) |" in samples
    assert "nfzoo eval glow-mnist5k --dataset mnist5k --samples 1000 --seeds 3" in samples
    # ddpm: one seed, said so; sampler options; a dirty tree stays marked
    assert "| ddpm-mnist5k | ddim, 50 steps, eta 1 | 1.0 | 13.37 (1 seed) |" in samples
    assert "(500 x 1; 2031-01-03, fedcba9+dirty)" in samples
    assert "(the default)" not in samples            # no config.json chose a setting
    card = root / "zoo/nfzoo_zoo/models/glow-mnist5k/README.md"
    card_text = card.read_text()
    assert "| ancestral | 0.7 | 45.20 +- 1.10 |" in dict(R.generated_blocks(card_text))["samples:glow-mnist5k"]
    # the model-index takes the default setting's FID only: none chosen, none there
    assert "45.2" not in dict(R.generated_blocks(card_text))["model-index:glow-mnist5k"]
    entry = json.loads((root / "zoo/nfzoo_zoo/index.json").read_text())["models"]["glow-mnist5k"]
    m = entry["metrics"]
    assert (m["fid_oracle_ancestral_t0.7"], m["fid_oracle_ancestral_t0.7_sd"], m["fid_oracle_ancestral_t0.7_seeds"]) \
        == (45.2, 1.1, 3)
    assert m["test_bpd"] == 1.5864 and entry["files"]["README.md"] == hashlib.sha256(card.read_bytes()).hexdigest()
    ddpm = json.loads((root / "zoo/nfzoo_zoo/index.json").read_text())["models"]["ddpm-mnist5k"]["metrics"]
    assert ddpm["fid_oracle_ddim50_eta1_t1.0"] == 13.37 and "fid_oracle_ddim50_eta1_t1.0_sd" not in ddpm
    # a file that goes takes its row with it: no file, no number
    (root / glow_rel).unlink()
    R.render(root, write=True)
    assert "45.20" not in (root / SAMPLES_PAGE).read_text() and "45.20" not in card.read_text()
    assert "45.20" not in (root / "docs/pages/zoo/glow-mnist5k.md").read_text()
    assert "fid_oracle_ancestral_t0.7" not in json.loads(
        (root / "zoo/nfzoo_zoo/index.json").read_text())["models"]["glow-mnist5k"]["metrics"]


def test_a_sample_file_of_other_weights_is_refused(tmp_path):
    """A flow's sample file records the test bpd it measured: one that differs from the model's history was
    measured on other weights (a retrained model), and the renderer says so instead of publishing it."""
    root = _copy_tree(tmp_path, before_chain=True)
    doc = json.loads((FIXTURES / "samples/glow-mnist5k/ancestral-t0.7.json").read_text())
    doc["bpd"] = 1.70
    target = root / "docs/results/samples/glow-mnist5k/ancestral-t0.7.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(doc))
    with pytest.raises(R.RenderError, match="other weights"):
        R.render(root, write=False)
    assert R.main(["--check", "--root", str(root)]) == 2


def test_an_unknown_block_or_a_missing_file_is_an_error(tmp_path):
    root = _copy_tree(tmp_path)
    readme = root / "README.md"
    text = readme.read_text()
    readme.write_text(text + "\n<!-- nfzoo:generated no-such-table (zoo/tools/render_docs.py; do not edit) -->\n"
                      "<!-- nfzoo:end -->\n")
    with pytest.raises(R.RenderError, match="unknown generated block 'no-such-table'"):
        R.render(root, write=False)
    readme.write_text(text)
    (root / "docs/results/bench-cinc.json").unlink()
    with pytest.raises(R.RenderError, match="bench-cinc.json is missing"):
        R.render(root, write=False)


def test_an_older_file_replaced_loses_its_recorded_command(tmp_path):
    """LEGACY describes a file only while it is the file it described: a retrained model's new history does
    not inherit the old run's command (and with its run's train.json beside it, that file is named)."""
    root = _copy_tree(tmp_path, before_chain=True)
    hist = root / "docs/results/glow-mnist5k-history.json"
    records = json.loads(hist.read_text())
    hist.write_text(json.dumps(records[:10]))
    diffs, warnings = R.render(root, write=True)
    assert any("glow-mnist5k-history.json changed" in w for w in warnings)
    table = _block(root, ZOO_PAGE, "zoo-training")
    assert "| glow-mnist5k | " + f"{records[9]['test_bpd']:.4f} | 10 |" in table
    assert "`docs/results/glow-mnist5k-history.json` (no measured_by record)" in table
    shutil.copy2(FIXTURES / "glow-mnist5k-train.json", root / "docs/results/glow-mnist5k-train.json")
    _, warnings = R.render(root, write=True)
    assert not any("glow-mnist5k-history.json changed" in w for w in warnings)
    assert ("`docs/results/glow-mnist5k-history.json` (no measured_by record; the run's settings: "
            "`docs/results/glow-mnist5k-train.json`)") in _block(root, ZOO_PAGE, "zoo-training")


def test_a_runs_train_json_gives_the_training_command(tmp_path):
    root = _copy_tree(tmp_path, before_chain=True)
    shutil.copy2(FIXTURES / "glow-mnist5k-train.json", root / "docs/results/glow-mnist5k-train.json")
    R.render(root, write=True)
    want = ("`nfzoo train glow --dataset mnist5k --epochs 95 --batch-size 64 --lr 0.002 --optimizer adam --warmup 200 "
            "--lr-schedule cosine --grad-clip 50.0 --seed 0 --precision fp32 --set levels=2 --set steps=4 --set "
            "hidden=64 --set preprocess=logit`")
    assert want in _block(root, ZOO_PAGE, "zoo-training")
    card = (root / "zoo/nfzoo_zoo/models/glow-mnist5k/README.md").read_text()
    assert f"1. Train (`docs/results/glow-mnist5k-train.json`):\n\n       {want.strip('`')}\n" in dict(
        R.generated_blocks(card))["recipe:glow-mnist5k"]


def test_a_description_quoting_a_number_no_file_backs_is_an_error(tmp_path):
    """An index description that quotes a measured number (glem-mnist5k's NF-A) needs the file that measured
    it: without docs/results/glem-mnist5k-classify.json rendering stops; with it, the number is the file's."""
    root = _copy_tree(tmp_path, before_chain=True)
    index_path = root / "zoo/nfzoo_zoo/index.json"
    index = json.loads(index_path.read_text())
    index["models"]["glem-mnist5k"]["description"] = "GLEM on mnist5k: class gaussians on a Glow; NF-A 95.3%"
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    with pytest.raises(R.RenderError, match="no result file backs"):
        R.render(root, write=False)
    shutil.copy2(FIXTURES / "glem-mnist5k-classify.json", root / "docs/results/glem-mnist5k-classify.json")
    R.render(root, write=True)
    entry = json.loads(index_path.read_text())["models"]["glem-mnist5k"]
    assert entry["metrics"]["nf_a"] == 0.951 and entry["description"].endswith("NF-A 95.1%")


# ------------------------------------------------------------------------------------------ the chain
def test_the_shipped_bpd_is_the_last_step_of_the_chain(tmp_path):
    """Item 1: the refit's test_bpd_after (with its test_bpd_before as the N(0, I) prior's), else the
    fine-tune's last test bpd, else the training run's; a noise-augmented model says its bpd is on clean
    data. The same number in the README, the card, the model-index, the index's metrics and description."""
    root = _chain_tree(tmp_path)
    diffs, warnings = R.render(root, write=True)
    assert diffs and not warnings and R.render(root, write=False)[0] == []
    zoo = _block(root, ZOO_PAGE, "zoo-training")
    assert ("| glow-mnist5k | 1.5531 (fitted latent prior; 1.5810 with the N(0, I) prior) | 95 + 3 (fine-tune) | "
            "`docs/results/glow-mnist5k-history.json`, `docs/results/glow-mnist5k-finetune-history.json` |") in zoo
    assert ("| inverse-flow-mnist5k | 1.5987 (fitted latent prior; 1.6120 with the N(0, I) prior; clean images; "
            "trained with noise sigma 0.4) | 3 |") in zoo
    noise = ("inverse-flow-mnist5k's test bpd is on the clean test images; the model was trained on data + "
             "N(0, 0.4^2) noise (TarFlow's noise augmentation")
    assert noise in zoo and noise in _block(root, "zoo/nfzoo_zoo/models/inverse-flow-mnist5k/README.md",
                                            "training:inverse-flow-mnist5k")
    assert "| nsf-mnist5k | 1.6551 | 16 |" in zoo                     # no chain: the training run's
    card = "zoo/nfzoo_zoo/models/glow-mnist5k/README.md"
    training = _block(root, card, "training:glow-mnist5k")
    assert "| test bpd of the shipped weights (fitted latent prior; exact) | 1.5531 |" in training
    assert "| test bpd with the N(0, I) prior (before the refit) | 1.5810 |" in training
    assert "| fine-tune: epochs / optimizer steps | 3 / 189 |" in training
    assert "| training run: test bpd (1000 test images, seeded dequantization, exact) | 1.5864 |" in training
    assert "docs/results/glow-mnist5k-refit.json` (measured 2031-02-01 at 1111111" in training
    assert ("value: 1.5531\n" in _block(root, card, "model-index:glow-mnist5k")
            and "glow-mnist5k-refit.json" in _block(root, card, "model-index:glow-mnist5k"))
    entry = json.loads((root / "zoo/nfzoo_zoo/index.json").read_text())["models"]["glow-mnist5k"]
    assert entry["metrics"]["test_bpd"] == 1.5531 and entry["metrics"]["test_bpd_normal_prior"] == 1.581
    assert entry["metrics"]["finetune_epochs"] == 3 and entry["description"].endswith("(test bpd 1.553)")
    # without the refit (and the samples it measured): the fine-tune's; without that: the training run's
    results = root / "docs/results"
    (results / "glow-mnist5k-refit.json").unlink()
    shutil.rmtree(results / "samples/glow-mnist5k")
    shutil.copy2(ROOT / "zoo/nfzoo_zoo/models/glow-mnist5k/config.json",
                 root / "zoo/nfzoo_zoo/models/glow-mnist5k/config.json")
    config = json.loads((root / "zoo/nfzoo_zoo/models/glow-mnist5k/config.json").read_text())
    config.pop("sampling", None)
    (root / "zoo/nfzoo_zoo/models/glow-mnist5k/config.json").write_text(json.dumps(config))
    R.render(root, write=True)
    assert "| glow-mnist5k | 1.5810 | 95 + 3 (fine-tune) |" in _block(root, ZOO_PAGE, "zoo-training")
    for f in ("glow-mnist5k-finetune-history.json", "glow-mnist5k-finetune-train.json"):
        (results / f).unlink()
    R.render(root, write=True)
    assert "| glow-mnist5k | 1.5864 | 95 | `docs/results/glow-mnist5k-history.json` |" in _block(
        root, ZOO_PAGE, "zoo-training")
    assert json.loads((root / "zoo/nfzoo_zoo/index.json").read_text())["models"]["glow-mnist5k"]["metrics"] \
        == {"test_bpd": 1.5864, "epochs": 95}


def test_a_refit_of_other_weights_is_refused(tmp_path):
    """A refit's test_bpd_before is the bpd of the weights it started from: not the last step's (here the
    training run's instead of the fine-tune's) means it refitted other weights."""
    root = _chain_tree(tmp_path)
    refit = root / "docs/results/glow-mnist5k-refit.json"
    doc = json.loads(refit.read_text())
    doc["test_bpd_before"] = 1.5864
    refit.write_text(json.dumps(doc))
    with pytest.raises(R.RenderError, match="started from other weights"):
        R.render(root, write=False)
    del doc["test_bpd_after"]
    refit.write_text(json.dumps(doc))
    with pytest.raises(R.RenderError, match="needs numbers test_bpd_before and test_bpd_after"):
        R.render(root, write=False)


def test_the_recipe_is_the_chain_of_commands(tmp_path):
    """Item 2: train (its train.json, else what LEGACY recorded for its history), fine-tune (its train.json,
    with --init), refit (its measured_by.command), in that order, in the card and in the README."""
    root = _chain_tree(tmp_path)
    R.render(root, write=True)
    recipe = _block(root, "zoo/nfzoo_zoo/models/glow-mnist5k/README.md", "recipe:glow-mnist5k")
    train = ("nfzoo train glow --dataset mnist5k --epochs 95 --batch-size 64 --lr 2e-3 --lr-schedule cosine --set "
             "levels=2 --set steps=4 --set hidden=64 --set preprocess=logit --seed 0")
    finetune = ("nfzoo train glow --dataset mnist5k --epochs 3 --batch-size 64 --lr 0.0005 --optimizer adam --warmup 0 "
                "--lr-schedule cosine --grad-clip 50.0 --seed 0 --precision fp32 --init glow-mnist5k --set "
                "scale_floor=0.05")
    refit = "nfzoo refit-prior runs/glow-mnist5k-floor --dataset mnist5k --out runs/glow-mnist5k-refit"
    assert recipe.index("1. Train (the run of `docs/results/glow-mnist5k-history.json`") < recipe.index(train) \
        < recipe.index("2. Fine-tune (`docs/results/glow-mnist5k-finetune-train.json`)") < recipe.index(finetune) \
        < recipe.index("3. Refit the latent prior (`docs/results/glow-mnist5k-refit.json`)") < recipe.index(refit)
    zoo = _block(root, ZOO_PAGE, "zoo-training")
    assert f"- glow-mnist5k: train: `{train}`; then fine-tune: `{finetune}`; then refit the latent prior: `{refit}`" \
        in zoo
    inverse = _block(root, "zoo/nfzoo_zoo/models/inverse-flow-mnist5k/README.md", "recipe:inverse-flow-mnist5k")
    assert "--set noise_sigma=0.4 --set scale_floor=0.05" in inverse and "2. Refit the latent prior" in inverse
    assert "Fine-tune" not in inverse
    nsf = _block(root, "zoo/nfzoo_zoo/models/nsf-mnist5k/README.md", "recipe:nsf-mnist5k")
    assert "1. Train (the run of `docs/results/nsf-mnist5k-history.json`" in nsf and "2." not in nsf
    assert "- nsf-mnist5k:" not in zoo            # no file-backed step: its command stays in the sources


@pytest.mark.parametrize("delta, refused", [(0.0, False), (8e-4, False), (1.2e-3, True)])
def test_a_sample_file_is_checked_against_the_shipped_bpd(tmp_path, delta, refused):
    """Item 3: a sample file's bpd must be the shipped weights' (the refit's) to 1e-3, not the history's."""
    root = _chain_tree(tmp_path)
    rel = root / "docs/results/samples/glow-mnist5k/ancestral-t0.7.json"
    doc = json.loads(rel.read_text())
    doc["bpd"] = 1.55312 + delta
    rel.write_text(json.dumps(doc))
    if refused:
        with pytest.raises(R.RenderError, match="glow-mnist5k-refit.json.*other weights"):
            R.render(root, write=False)
    else:
        R.render(root, write=True)
        samples = _block(root, SAMPLES_PAGE, "samples")
        assert "| glow-mnist5k | ancestral (the default) | 0.7 | 30.80 +- 0.70 |" in samples


def test_a_sample_file_of_the_training_run_is_refused_after_a_refit(tmp_path):
    root = _chain_tree(tmp_path)
    shutil.copy2(FIXTURES / "samples/glow-mnist5k/ancestral-t0.7.json",     # bpd 1.58639: the training run's
                 root / "docs/results/samples/glow-mnist5k/ancestral-t0.5.json")
    with pytest.raises(R.RenderError, match="ancestral-t0.5.json records test bpd 1.5864 but the shipped weights "
                       "of glow-mnist5k have 1.5531"):
        R.render(root, write=False)


def test_sample_tables_mark_the_default_and_say_who_chose_it(tmp_path):
    """Item 4: a row per file (sampler, T, FID, Coverage, Density, recognisable with the real images' share
    once, label reliability where a file has it, non-finite "k / N", source); the config's setting marked
    "(the default)", and a line that names the file that chose it; the model-index takes that setting's
    FID and recognisable share and the test bpd."""
    root = _chain_tree(tmp_path)
    R.render(root, write=True)
    card = "zoo/nfzoo_zoo/models/glow-mnist5k/README.md"
    rows = _block(root, card, "samples:glow-mnist5k")
    assert ("| sampler | T | FID | Coverage | Density | recognisable (real test images: 97.5%) | non-finite samples | "
            "source (samples x seeds; measured) |") in rows
    assert ("| ancestral (the default) | 0.7 | 30.80 +- 0.70 | 0.533 +- 0.015 | 0.817 +- 0.021 | 82.0% +- 1.0% | "
            "0 / 3000 | `docs/results/samples/glow-mnist5k/ancestral-t0.7.json` (1000 x 3; 2031-02-02, 2222222) |") \
        in rows
    assert "| ancestral | 1.0 | 38.23 +- 0.75 | 0.440 +- 0.010 | 0.610 +- 0.010 | 70.3% +- 1.5% | 3 / 3000 |" in rows
    assert rows.count("(the default)") == 2        # the row and the line that explains it
    assert ("ancestral at T=0.7, chosen by `docs/results/samples/sweep.py --choose` from "
            "`docs/results/samples/glow-mnist5k/ancestral-t0.7.json`") in rows
    index = _block(root, card, "model-index:glow-mnist5k")
    assert "value: 30.8\n" in index and "value: 0.82\n" in index and "value: 1.5531\n" in index
    assert "38.23" not in index and "- recognisable" in index
    # label reliability: a column once a file has it
    rel = root / "docs/results/samples/glow-mnist5k/ancestral-t1.json"
    doc = json.loads(rel.read_text())
    doc["summary"]["label_reliability"] = {"mean": 0.9, "sd": 0.01, "n": 3}
    rel.write_text(json.dumps(doc))
    R.render(root, write=True)
    rows = _block(root, card, "samples:glow-mnist5k")
    assert "| recognisable (real test images: 97.5%) | label reliability | non-finite samples |" in rows
    assert "| 82.0% +- 1.0% | - | 0 / 3000 |" in rows and "| 70.3% +- 1.5% | 90.0% +- 1.0% | 3 / 3000 |" in rows


@pytest.mark.parametrize("sampling, error", [
    ({"sampler": "ancestral", "temperature": 0.7, "source": "docs/results/samples/glow-mnist5k/ancestral-t0.5.json"},
     "is not a sample-quality file of glow-mnist5k"),
    ({"sampler": "ancestral", "temperature": 1.0, "source": "docs/results/samples/glow-mnist5k/ancestral-t0.7.json"},
     "sampling.temperature is 1.0 but its source"),
])
def test_a_default_setting_without_its_file_is_an_error(tmp_path, sampling, error):
    root = _chain_tree(tmp_path)
    path = root / "zoo/nfzoo_zoo/models/glow-mnist5k/config.json"
    config = json.loads(path.read_text())
    config["sampling"] = sampling
    path.write_text(json.dumps(config))
    with pytest.raises(R.RenderError, match=re.escape(error)):
        R.render(root, write=False)


def test_the_zoo_table_gives_each_default_with_its_bpd(tmp_path):
    """Item 5: per model its default setting's FID, recognisable share and non-finite count, its test bpd,
    the most non-finite samples of any of its files; the real images of the same sample count below."""
    root = _chain_tree(tmp_path)
    R.render(root, write=True)
    zoo = _block(root, SAMPLES_PAGE, "zoo-defaults")
    assert ("| glow-mnist5k | ancestral, T=0.7 | 30.80 +- 0.70 | 82.0% +- 1.0% | 0 / 3000 | 1.5531 (fitted latent "
            "prior; 1.5810 with the N(0, I) prior) | 3 / 3000 (ancestral-t1, of 2 file(s)) | "
            "`docs/results/samples/glow-mnist5k/ancestral-t0.7.json` |") in zoo
    assert "| inverse-flow-mnist5k | ancestral, T=1.0 | 25.50 +- 0.71 | 89.0% +- 1.4% | 0 / 2000 | 1.5987 (" in zoo
    assert ("| real images (1000 training images per seed, in place of samples) | - | 2.93 +- 0.25 | 99.6% +- 0.1% "
            "| - | - | - | `docs/results/real-reference/mnist5k-oracle-n1000.json` |") in zoo
    assert "mnist5k-oracle-n2000" not in zoo           # no default drew 2000 samples per seed
    assert "recognisable at 97.5%" in zoo and "nsf-mnist5k" not in zoo
    # a model measured but not yet chosen for is named, without a row
    path = root / "zoo/nfzoo_zoo/models/inverse-flow-mnist5k/config.json"
    config = json.loads(path.read_text())
    del config["sampling"]
    path.write_text(json.dumps(config))
    R.render(root, write=True)
    zoo = _block(root, SAMPLES_PAGE, "zoo-defaults")
    assert "| inverse-flow-mnist5k |" not in zoo and "Measured, no default chosen yet: inverse-flow-mnist5k." in zoo


def test_before_the_chain_there_is_no_row(tmp_path):
    """Item 6: with none of the chain's files (no refit, no fine-tune, no sample file, no "sampling"), every
    block renders, without a number that no file gives."""
    root = _copy_tree(tmp_path, before_chain=True)
    R.render(root, write=True)
    assert R.render(root, write=False)[0] == []
    assert _block(root, SAMPLES_PAGE, "zoo-defaults").strip().startswith("No zoo model has a measured default")
    assert _block(root, SAMPLES_PAGE, "samples").strip().startswith("No sample-quality result file")
    assert "fine-tune: `" not in _block(root, ZOO_PAGE, "zoo-training")     # no fine-tune command


def test_sample_files_give_their_sampler_options_old_and_new():
    from nfzoo.evaluation.results import measured_sampler_options

    rd = _renderer()
    old = {"sampler": "ddim", "steps": 20, "eta": 1.0}                  # written before "sampler_options"
    new = {"sampler": "tarflow", "sampler_options": "guidance", "guidance": 2.0}
    early = {"sampler": "tarflow", "sampler_options": {"guidance": 2.0}}   # 2026-12-03's object form
    assert measured_sampler_options(old) == {"steps": 20, "eta": 1.0}
    assert measured_sampler_options(new) == measured_sampler_options(early) == {"guidance": 2.0}
    assert measured_sampler_options({"sampler": "tarflow", "sampler_options": ""}) == {}
    assert measured_sampler_options({"sampler": "ancestral"}) == {}
    assert rd.sampler_label(old) == "ddim, 20 steps, eta 1"
    assert rd.sampler_label(new) == "tarflow, guidance 2"
