"""Every published number comes from the file that measured it (issue 22): zoo/tools/render_docs.py, run in
check mode, finds README.md, the zoo's model cards and zoo/nfzoo_zoo/index.json exactly as the result files
under docs/results give them; every generated block names files that exist; a number edited by hand inside a
block fails the check (on a copy); and sample-quality files (fixtures in tests/fixtures/results, written as
`nfzoo eval ... --out` writes them) become rows of the tables, metrics of the index and of the cards'
model-index, with the cards' sha256 pins refreshed."""
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
PATH_IN_BLOCK = re.compile(r"`((?:docs/results|zoo)/[^`\s]+)`|source ((?:docs/results|zoo)/[\w./+-]*\w)")


def _renderer():
    spec = importlib.util.spec_from_file_location("render_docs", ROOT / "zoo" / "tools" / "render_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


R = _renderer()


def _copy_tree(dst: Path) -> Path:
    """What the renderer reads and writes, copied under dst: README.md, the index, the cards, docs/results."""
    shutil.copy2(ROOT / "README.md", dst / "README.md")
    (dst / "zoo" / "nfzoo_zoo").mkdir(parents=True)
    shutil.copy2(ROOT / "zoo" / "nfzoo_zoo" / "index.json", dst / "zoo" / "nfzoo_zoo" / "index.json")
    for card in CARDS:
        (dst / card.relative_to(ROOT)).parent.mkdir(parents=True)
        shutil.copy2(card, dst / card.relative_to(ROOT))
    shutil.copytree(ROOT / "docs" / "results", dst / "docs" / "results")
    return dst


def _diff_text(diffs):
    return "".join(diffs)[:4000] + "\n(run `.venv/bin/python zoo/tools/render_docs.py` and commit what it writes)"


def test_readme_cards_and_index_match_their_result_files():
    diffs, warnings = R.render(ROOT, write=False)
    assert not diffs, _diff_text(diffs)
    assert not warnings, warnings


def test_every_generated_block_names_existing_files():
    documents = [ROOT / "README.md", *CARDS]
    seen = set()
    for doc in documents:
        for block_id, body in R.generated_blocks(doc.read_text()):
            seen.add(block_id.split(":")[0])
            paths = [a or b for a, b in PATH_IN_BLOCK.findall(body)]
            if re.search(r"\d", body.replace("mnist5k", "")) and not body.startswith("\nNo sample-quality"):
                assert paths, f"{doc.relative_to(ROOT)}: block {block_id} shows numbers but names no file"
            for p in paths:
                assert (ROOT / p).exists(), f"{doc.relative_to(ROOT)}: block {block_id} names {p}, which is missing"
    # the README and cards use every kind of block the renderer has (none is dead code)
    assert seen >= set(R.BLOCKS) | {"model-index"}, set(R.BLOCKS) - seen


def test_the_readme_says_how_the_numbers_are_made():
    text = (ROOT / "README.md").read_text()
    assert ".venv/bin/python zoo/tools/render_docs.py" in text and "tests/test_generated_docs.py" in text
    results = text[text.index("## Results"):text.index("## Status")]
    assert "session" not in results.lower() and "session" not in text[text.index("## Status"):].lower()


@pytest.mark.parametrize("where", ["README.md", "zoo/nfzoo_zoo/models/glow-mnist5k/README.md",
                                   "zoo/nfzoo_zoo/models/ddpm-mnist5k/README.md"])
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
    root = _copy_tree(tmp_path)
    shutil.copytree(FIXTURES / "samples", root / "docs" / "results" / "samples", dirs_exist_ok=True)
    diffs, _ = R.render(root, write=True)
    assert diffs and R.render(root, write=False)[0] == []          # written once, then up to date
    glow_rel = "docs/results/samples/glow-mnist5k/ancestral-t0.7.json"
    ddpm_rel = "docs/results/samples/ddpm-mnist5k/ddim50-eta1-t1.0.json"
    readme = (root / "README.md").read_text()
    samples = dict(R.generated_blocks(readme))["samples"]
    # glow: 3 seeds, mean +- sd (sd with ddof 1), where the file came from and what measured it
    assert "| glow-mnist5k | ancestral | 0.7 | 1000 x 3 | 45.20 +- 1.10 | 0.165 +- 0.007 |" in samples
    assert "2031-01-02, 0123456" in samples and f"`{glow_rel}`" in samples
    assert "nfzoo eval glow-mnist5k --dataset mnist5k --samples 1000 --seeds 3" in samples
    # ddpm: one seed, said so; sampler options; a dirty tree stays marked
    assert "| ddpm-mnist5k | ddim, 50 steps, eta 1 | 1.0 | 500 x 1 | 13.37 (1 seed) |" in samples
    assert "fedcba9+dirty" in samples
    card = root / "zoo/nfzoo_zoo/models/glow-mnist5k/README.md"
    card_text = card.read_text()
    assert "| ancestral | 0.7 | 1000 x 3 | 45.20 +- 1.10 |" in dict(R.generated_blocks(card_text))[
        "samples:glow-mnist5k"]
    assert "value: 45.2\n" in card_text and glow_rel in dict(R.generated_blocks(card_text))[
        "model-index:glow-mnist5k"]
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
    assert "45.20" not in (root / "README.md").read_text() and "45.2" not in card.read_text()
    assert "fid_oracle_ancestral_t0.7" not in json.loads(
        (root / "zoo/nfzoo_zoo/index.json").read_text())["models"]["glow-mnist5k"]["metrics"]


def test_a_sample_file_of_other_weights_is_refused(tmp_path):
    """A flow's sample file records the test bpd it measured: one that differs from the model's history was
    measured on other weights (a retrained model), and the renderer says so instead of publishing it."""
    root = _copy_tree(tmp_path)
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
    not inherit the old run's command."""
    root = _copy_tree(tmp_path)
    hist = root / "docs/results/glow-mnist5k-history.json"
    records = json.loads(hist.read_text())
    hist.write_text(json.dumps(records[:10]))
    diffs, warnings = R.render(root, write=True)
    assert any("glow-mnist5k-history.json changed" in w for w in warnings)
    table = dict(R.generated_blocks((root / "README.md").read_text()))["zoo-training"]
    assert "| glow-mnist5k | " + f"{records[9]['test_bpd']:.4f} | 10 |" in table
    assert "`docs/results/glow-mnist5k-history.json` (no measured_by record)" in table


def test_a_runs_train_json_gives_the_training_command(tmp_path):
    root = _copy_tree(tmp_path)
    shutil.copy2(FIXTURES / "glow-mnist5k-train.json", root / "docs/results/glow-mnist5k-train.json")
    R.render(root, write=True)
    want = ("`nfzoo train glow --dataset mnist5k --epochs 95 --batch-size 64 --lr 0.002 --optimizer adam --warmup 200 "
            "--lr-schedule cosine --grad-clip 50.0 --seed 0 --precision fp32 --set levels=2 --set steps=4 --set "
            "hidden=64 --set preprocess=logit`")
    assert want in dict(R.generated_blocks((root / "README.md").read_text()))["zoo-training"]
    card = (root / "zoo/nfzoo_zoo/models/glow-mnist5k/README.md").read_text()
    assert want in dict(R.generated_blocks(card))["training:glow-mnist5k"]


def test_a_retrained_glem_drops_the_old_weights_numbers(tmp_path):
    """The older single-seed GLEM evaluation is shown only while it measured the weights of the history: a
    new history hides it (with a warning), NF-A then comes from a classify result file, and an index
    description that quotes a number no file backs any more is an error."""
    root = _copy_tree(tmp_path)
    hist = root / "docs/results/glem-mnist5k-history.json"
    records = json.loads(hist.read_text())
    records[-1]["test_bpd"] = 2.40
    hist.write_text(json.dumps(records))
    with pytest.raises(R.RenderError, match="no result file backs"):
        R.render(root, write=False)                   # "NF-A 95.3%" in the description, no NF-A file
    shutil.copy2(FIXTURES / "glem-mnist5k-classify.json", root / "docs/results/glem-mnist5k-classify.json")
    index = json.loads((root / "zoo/nfzoo_zoo/index.json").read_text())
    index["models"]["glem-mnist5k"]["description"] = "GLEM on mnist5k: class gaussians on a Glow; NF-A 95.3%"
    (root / "zoo/nfzoo_zoo/index.json").write_text(json.dumps(index, indent=2) + "\n")
    _, warnings = R.render(root, write=True)
    assert any("glem-mnist5k-eval.json is stale" in w for w in warnings)
    glem = dict(R.generated_blocks((root / "README.md").read_text()))["glem"]
    assert "| glem-mnist5k (lambda 0.45 -> 0.25) | 95.1% | 2.4000 | - |" in glem
    assert "41.50" not in glem and "| lambda = 0 | 28.42 / 0.443 / 75.2% / 0 |" in glem   # the twin is unchanged
    assert "`docs/results/glem-mnist5k-classify.json` (measured 2031-01-04 at 89abcde" in glem
    entry = json.loads((root / "zoo/nfzoo_zoo/index.json").read_text())["models"]["glem-mnist5k"]
    assert entry["metrics"]["nf_a"] == 0.951 and "fid_oracle_rfcm_t0.7" not in entry["metrics"]
    assert entry["description"].endswith("NF-A 95.1%")
