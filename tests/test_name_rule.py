"""One name rule (issue 36, item 2): one table of names, each with what is on disk and what it must mean,
run against every entry point that takes a model name: the parser itself (nfzoo.loading.pretrained.parse_model_name
and the zoo lookup), nfzoo.load, FlowModel.from_pretrained, the CLI (`nfzoo sample --model NAME`), a recipe's
init_from (check_recipe) and the gallery (zoo names only, decided without looking at the disk).

Each entry point is stopped where it reaches a source: nfzoo.hub.fetch.resolve (a Hub repo, or a zoo entry's
files) and nfzoo.loading.api.load_directory (a folder) record what they were asked for and raise; nothing is loaded
or downloaded. The rows' folders are empty, so a recipe (which checks a folder for config.json) says which
folder it read; its zoo check, against another architecture, says which model it found. The last tests run
ORG/NAME end to end against the loopback Hub (tests/hubserver.py)."""
import os
import re
from pathlib import Path

import pytest
import torch

import nfzoo
import nfzoo.hub.fetch
import nfzoo.loading.api
from nfzoo.errors import HubNotFoundError, NfzooError, NotCachedError, UsageError
from nfzoo.loading.pretrained import ModelName, parse_model_name, resolve_pretrained

ZOO = "glow-mnist5k"         # embedded in the zoo package; "glow" is its family name
PROBE_ARCH = "nice"          # the recipe's stage trains this: a zoo init_from of glow is refused, naming glow

# (name, folders that exist, what it means). Names and folders are relative to the working directory;
# {abs} is an absolute folder elsewhere and ~ the home directory. What it means: ("zoo", entry name),
# ("dir", folder), ("hub", repo id, revision) or ("error", a part of the message; exit code 2).
TABLE = [
    (ZOO, [], ("zoo", ZOO)),                                       # a pretrained name
    ("glow", [], ("zoo", ZOO)),                                    # a family name: its default model
    (ZOO, [ZOO], ("zoo", ZOO)),                                    # a folder of that name never shadows it
    ("./x", ["x"], ("dir", "x")),
    ("../x", ["../x"], ("dir", "../x")),
    ("{abs}/x", ["{abs}/x"], ("dir", "{abs}/x")),
    ("~/x", ["~/x"], ("dir", "~/x")),
    (".x", [".x"], ("dir", ".x")),
    ("local-dir:x", ["x"], ("dir", "x")),
    ("local-dir:" + ZOO, [ZOO], ("dir", ZOO)),                     # a folder named like a zoo model
    ("hf-hub:org/x", [], ("hub", "org/x", None)),
    ("hf-hub:org/x@main", [], ("hub", "org/x", "main")),
    ("hf-hub:org/x", ["org/x"], ("hub", "org/x", None)),           # hf-hub: is the Hub, folder or not
    ("org/x", ["org/x"], ("dir", "org/x")),                        # ORG/NAME: the folder if it exists ...
    ("org/x", [], ("hub", "org/x", None)),                         # ... else the Hub repo
    ("org/na me", ["org/na me"], ("dir", "org/na me")),            # not a repo id, but a folder here
    ("a/b/c", ["a/b/c"], ("dir", "a/b/c")),                        # any other path is a folder
    ("my-run", ["my-run"], ("error", "unknown pretrained model 'my-run'")),   # a bare name is the zoo's
    ("org/na me", [], ("error", "bad Hub repo id 'org/na me'")),   # ORG/NAME, no folder, not a repo id
    ("org/x@main", [], ("error", "hf-hub:org/x@main")),            # a revision is written hf-hub:ORG/NAME@REV
    ("hf-hub:x", [], ("error", "bad Hub id 'hf-hub:x'")),
    ("hf-hub:org/x@a..b", [], ("error", "bad Hub id 'hf-hub:org/x@a..b'")),
]
IDS = [f"{name}{'+folder' if folders else ''}" for name, folders, _ in TABLE]


class Reached(Exception):
    """Raised where an entry point reaches a source; `seen` holds what it was asked for."""


@pytest.fixture
def places(tmp_path, monkeypatch):
    """The working directory, the home directory and an absolute folder elsewhere; HOME points at the second,
    the Hub is offline and NFZOO_TRACEBACK unset (the CLI reports errors as it does for users)."""
    cwd, home, abs_ = tmp_path / "cwd", tmp_path / "home", tmp_path / "abs"
    for d in (cwd, home, abs_):
        d.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("NFZOO_TRACEBACK", raising=False)
    return {"cwd": cwd, "home": home, "abs": abs_}


def _fill(text, places):
    return text.replace("{abs}", str(places["abs"]))


def _folder(text, places) -> Path:
    """A table folder as an absolute, resolved path."""
    p = Path(_fill(text, places))
    if text.startswith("~/"):
        p = places["home"] / text[2:]
    return (p if p.is_absolute() else places["cwd"] / p).resolve()


@pytest.fixture
def sources(monkeypatch):
    """nfzoo.hub.fetch.resolve and nfzoo.loading.api.load_directory record what they are asked for and raise Reached."""
    seen = []

    def resolve(spec, download=False, force=False, progress=None, token=None):
        seen.append(("hub", spec.repo_id, spec.revision) if spec.status == "remote" else ("zoo", spec.name))
        raise Reached()

    def load_directory(directory, device=None):
        seen.append(("dir", Path(directory).resolve()))
        raise Reached()

    monkeypatch.setattr(nfzoo.hub.fetch, "resolve", resolve)
    monkeypatch.setattr(nfzoo.loading.api, "load_directory", load_directory)
    return seen


def _called(fn, name, seen):
    """What `fn(name)` reached: a source it asked for, or ("error", exit code, message)."""
    del seen[:]
    try:
        fn(name)
    except Reached:
        return seen[-1]
    except NfzooError as exc:
        return ("error", exc.exit_code, str(exc))
    raise AssertionError(f"{name!r} loaded without reaching a source")


# ------------------------------------------------------------------------------------------ entry points
def parser(name, places, seen, runner, app):
    """parse_model_name, then the zoo's lookup for a zoo name (what every entry point does next)."""
    try:
        m = parse_model_name(name)
        if m.kind == "zoo":
            return ("zoo", resolve_pretrained(m.value).name)
    except NfzooError as exc:
        return ("error", exc.exit_code, str(exc))
    return ("dir", m.path.resolve()) if m.kind == "dir" else ("hub", m.value, m.revision)


def load(name, places, seen, runner, app):
    return _called(nfzoo.load, name, seen)


def from_pretrained(name, places, seen, runner, app):
    return _called(nfzoo.FlowModel.from_pretrained, name, seen)


def cli(name, places, seen, runner, app):
    """`nfzoo sample --model NAME -n 1` (its --model goes through the toolkit's load_model)."""
    del seen[:]
    res = runner.invoke(app, ["sample", "--model", name, "-n", "1", "--out", str(places["cwd"] / "s.png")])
    if seen:
        return seen[-1]
    assert "Traceback" not in res.output and "internal error" not in res.output, res.output
    return ("error", res.exit_code, res.output)


def recipe(name, places, seen, runner, app):
    """check_recipe of one stage training PROBE_ARCH from `name`: passes for a Hub id, names the folder it
    looked in for config.json (the table's folders have none), or the architecture of the zoo model."""
    from nfzoo.errors import ConfigError
    from nfzoo.training.recipes import check_recipe, parse_recipe

    doc = {"recipe": 1, "stages": [{"name": "a", "train": {"arch": PROBE_ARCH, "dataset": "digits", "epochs": 1,
                                                          "init_from": name}}]}
    try:
        check_recipe(parse_recipe(doc, "r.yaml"))
    except ConfigError as exc:
        msg = str(exc)
        assert msg.startswith("r.yaml: stage 1 (a): "), msg
        zoo = re.search(rf"init_from .* is a (\S+) model; this stage trains {PROBE_ARCH}:", msg)
        if zoo:
            return ("zoo-architecture", zoo.group(1))
        folder = re.search(r"is not a model folder \(no config\.json at (.*)\)\. Give", msg)
        if folder:
            return ("dir", Path(folder.group(1)).resolve())
        return ("error", exc.exit_code, msg)
    return ("hub",)


def gallery(name, places, seen, runner, app):
    """The gallery's resolve: a zoo entry, or an unknown name."""
    from nfzoo_gallery import zoo

    try:
        return ("zoo", zoo.resolve(name).name)
    except NfzooError as exc:
        return ("error", exc.exit_code, str(exc))


def pull(name, places, seen, runner, app):
    """`nfzoo pull NAME`: the Hub (or the zoo's pin) it asks for, or its refusal of a folder."""
    del seen[:]
    res = runner.invoke(app, ["pull", name])
    if seen:
        return seen[-1]
    assert "Traceback" not in res.output and "internal error" not in res.output, res.output
    return ("error", res.exit_code, res.output)


ENTRY_POINTS = [parser, load, from_pretrained, cli, recipe, gallery, pull]


def _expected(entry_point, meaning, places):
    """What `entry_point` must answer for a name of this meaning."""
    kind = meaning[0]
    if entry_point is gallery and kind != "zoo":
        return ("error", "unknown pretrained model")             # it serves the zoo's names only
    if entry_point is recipe and kind == "zoo":
        return ("zoo-architecture", resolve_pretrained(meaning[1]).architecture)
    if entry_point is recipe and kind == "hub":
        return ("hub",)                                          # well-formed; it is loaded when the stage runs
    if entry_point is pull and kind == "dir":
        return ("error", "is a local directory")                 # nothing to pull
    if kind == "dir":
        return ("dir", _folder(meaning[1], places))
    return meaning


@pytest.mark.parametrize("entry_point", ENTRY_POINTS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("name,folders,meaning", TABLE, ids=IDS)
def test_every_entry_point_reads_a_name_the_same_way(name, folders, meaning, entry_point, places, sources,
                                                     runner, app, monkeypatch):
    for f in folders:
        _folder(f, places).mkdir(parents=True)
    name = _fill(name, places)
    if entry_point is gallery:
        gallery(ZOO, places, sources, runner, app)               # the registry is loaded before we watch
        looked = _watch_the_disk(monkeypatch)
    got = entry_point(name, places, sources, runner, app)
    want = _expected(entry_point, meaning, places)
    if want[0] == "error":
        assert got[0] == "error" and got[1] == 2 and want[1] in got[2], (got, want)
    else:
        assert got == want
    if entry_point is gallery:
        assert looked == [], "the gallery looked a client's name up on its disk"


def _watch_the_disk(monkeypatch):
    """Record every is_dir / exists / is_file / isdir / stat of a path from now on."""
    import pathlib

    looked = []
    for method in ("is_dir", "exists", "is_file"):
        real = getattr(pathlib.Path, method)
        monkeypatch.setattr(pathlib.Path, method,
                            lambda self, *a, _real=real, **k: looked.append(str(self)) or _real(self, *a, **k))
    for fn in ("isdir", "exists", "isfile"):
        real = getattr(os.path, fn)
        monkeypatch.setattr(os.path, fn, lambda p, _real=real: looked.append(str(p)) or _real(p))
    return looked


def test_the_table_covers_every_rule(places):
    rules = set()
    for name, folders, _ in TABLE:
        for f in folders:
            _folder(f, places).mkdir(parents=True, exist_ok=True)
        try:
            rules.add(parse_model_name(_fill(name, places)).rule)
        except UsageError:
            pass
    assert rules == {1, 2, 3, 4, 5, 6}


# ------------------------------------------------------------------------------------------ the parser
def test_the_parser_result_is_typed(places):
    (places["cwd"] / "org" / "x").mkdir(parents=True)
    assert parse_model_name("hf-hub:org/x@v1") == ModelName("hub", "org/x", "v1", 1, "hf-hub:org/x@v1")
    assert parse_model_name("hf-hub:org/x@v1").hub_id == "hf-hub:org/x@v1"
    assert parse_model_name("org/x") == ModelName("dir", "org/x", None, 4, "org/x")
    assert parse_model_name("~/x").path == places["home"] / "x"
    assert parse_model_name(Path("glow")) == ModelName("dir", "glow", None, 3, "glow")   # a PathLike
    with pytest.raises(UsageError, match="a string or a path"):
        parse_model_name(3)


def test_without_looking_org_name_is_the_hub_and_no_disk_is_read(places, monkeypatch):
    (places["cwd"] / "org" / "x").mkdir(parents=True)
    looked = _watch_the_disk(monkeypatch)
    for name in ("org/x", "org/y"):
        assert parse_model_name(name, look=False) == ModelName("hub", name, None, 4, name)
    assert parse_model_name("x", look=False).kind == "zoo"
    with pytest.raises(UsageError) as err:
        parse_model_name("org/na me", look=False)
    assert "here" not in str(err.value)            # it did not look, so it does not say what is here
    assert looked == []


# ------------------------------------------------------------------------------------------ end to end
def _tiny(seed):
    torch.manual_seed(seed)
    return nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=1, steps=1, hidden=8)


def _same(a, b):
    sb = b.state_dict()
    return all(torch.equal(v, sb[k]) for k, v in a.state_dict().items())


def test_org_name_is_the_hub_repo_unless_such_a_folder_exists(hub, tmp_path, monkeypatch, runner, app):
    """nfzoo.load("org/tiny") and FlowModel.from_pretrained("org/tiny") are the same Hub repo; nfzoo.load
    stays offline (the cache only) unless asked, and says so; a folder org/tiny then wins, except over
    hf-hub:."""
    pushed = _tiny(1)
    pushed.push_to_hub("org/tiny")
    monkeypatch.chdir(tmp_path)
    hub.reset_counts()
    with pytest.raises(NotCachedError) as err:              # offline by default, as for hf-hub: ids
        nfzoo.load("org/tiny")
    msg = str(err.value)
    assert "nfzoo pull hf-hub:org/tiny" in msg and "no directory 'org/tiny' here either" in msg
    assert hub.count == 0
    with pytest.raises(HubNotFoundError, match="no directory 'org/nothing' here either") as err:
        nfzoo.load("org/nothing", download=True)
    assert err.value.exit_code == 2

    assert _same(nfzoo.FlowModel.from_pretrained("org/tiny"), pushed)     # downloads (the mixin's default)
    hub.reset_counts()
    assert _same(nfzoo.load("org/tiny"), pushed)                          # now from the cache
    res = runner.invoke(app, ["sample", "--model", "org/tiny", "-n", "1", "--out", str(tmp_path / "s.png")])
    assert res.exit_code == 0, res.output
    assert hub.count == 0 and (tmp_path / "s.png").is_file()

    local = _tiny(2)
    local.save_pretrained(tmp_path / "org" / "tiny")
    for load in (nfzoo.load, nfzoo.FlowModel.from_pretrained):
        assert _same(load("org/tiny"), local)                             # the folder wins
        assert _same(load("hf-hub:org/tiny"), pushed)                     # hf-hub: is always the Hub


def test_a_bare_name_is_never_a_folder_even_with_a_model_in_it(places, runner, app):
    """The shadowing folder holds a real model: nfzoo.load and the CLI still load the zoo's."""
    _tiny(3).save_pretrained(places["cwd"] / "glow")
    assert nfzoo.load("glow").config["image_shape"] == [1, 28, 28]
    assert nfzoo.load("./glow").config["image_shape"] == [1, 8, 8]
    with pytest.raises(UsageError, match="no such directory"):
        nfzoo.load("./glow-typo")
