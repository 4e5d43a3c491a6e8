"""The Hub client against strangers (issue 20, items 2, 3 and the Hub / cache parts of 9): repo ids and
revisions are validated before any request or write (a revision cannot write outside the cache); a Hub
that never answers, or stalls mid-body, ends in seconds with exit 1 and a message naming the endpoint and
NFZOO_HUB_TIMEOUT; a Hub answering odd commit shas or ETags writes nothing; `pull --force` against a
tampering Hub keeps the verified copy; a read-only cache gives a clear error, not a traceback."""
import errno
import json
import os
import time
from pathlib import Path

import pytest
from hubserver import SilentServer
from test_hub import _error_line, _model_dir, _same_weights, cli

import nfzoo
from nfzoo.errors import ChecksumError, HubError, UsageError
from nfzoo.hub import fetch as nfhub
from nfzoo.hub import files as hub_files
from nfzoo.hub import http as hub_http
from nfzoo.hub import names as hub_names


@pytest.fixture
def tiny(hub, tmp_path):
    """A tiny model served as nfzoo/tiny: (its folder, its commit sha)."""
    folder = _model_dir(tmp_path / "m", 5)
    return folder, hub.add_repo("nfzoo/tiny", folder)


def _cache():
    return Path(os.environ["HF_HUB_CACHE"])


# ---------------------------------------------------------------- names and revisions
GOOD_REVISIONS = ["main", "v1.0", "refs/pr/1", "feature/x-y_z", "a" * 40, "release-2024.01"]
BAD_REVISIONS = ["../../../escaped", "..", "a/../b", "-rf", "/etc", "a//b", "a/", "a.", "a.lock", "x/b.lock/c",
                 "a@{1}", "@", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[b", "a\\b", "a\x00b", "a\nb", ".hidden",
                 "x/.y", "", "x" * 256]


@pytest.mark.parametrize("rev", GOOD_REVISIONS)
def test_good_revisions_pass(rev):
    assert hub_names.check_revision(rev) == rev and hub_names.revision_problem(rev) is None


@pytest.mark.parametrize("rev", BAD_REVISIONS)
def test_bad_revisions_are_usage_errors_that_say_why(rev):
    with pytest.raises(UsageError, match="bad revision .*branch or tag name .* 40-hex commit sha"):
        hub_names.check_revision(rev)
    with pytest.raises(UsageError, match="hf-hub:ORG/NAME@REVISION"):
        nfhub.parse_hf_id(f"hf-hub:nfzoo/tiny@{rev}")
    with pytest.raises(UsageError):
        nfhub.spec_for("hf-hub:nfzoo/tiny", revision=rev)


@pytest.mark.parametrize("repo_id", ["a--b/c", "a/b..c", "x", "a/b/c", "nfzoo/tiny.git", "\u00fc/x", "a/" + "b" * 97,
                                     "../x", "a/.b", "a/b c", ""])
def test_bad_repo_ids_are_usage_errors(repo_id):
    with pytest.raises(UsageError, match="ORG/NAME"):
        hub_names.check_repo_id(repo_id)
    with pytest.raises(UsageError, match="hf-hub:ORG/NAME"):
        nfhub.spec_for(f"hf-hub:{repo_id}")


def test_a_revision_cannot_write_outside_the_cache(hub, tiny, tmp_path, runner, app):
    """Item 2: against a Hub that answers any revision, `../../../escaped` wrote tmp_path/escaped (the ref
    file). Now it is refused with exit 2 before any request, on every way in."""
    folder, sha = tiny
    hub.any_revision = True
    escaped = tmp_path / "escaped"
    rev = "../../../escaped"      # refs/<rev> from HF_HUB_CACHE/models--nfzoo--tiny lands at tmp_path/escaped
    for args in (["pull", f"hf-hub:nfzoo/tiny@{rev}"], ["pull", "hf-hub:nfzoo/tiny", "--revision", rev],
                 ["pull", "hf-hub:nfzoo/tiny@main", "--revision", rev],
                 ["cache", "rm", "hf-hub:nfzoo/tiny", "--revision", rev],
                 ["cache", "ls", f"hf-hub:nfzoo/tiny@{rev}"], ["cache", "verify", f"hf-hub:nfzoo/tiny@{rev}"],
                 ["cache", "ls", "hf-hub:../tiny"]):
        res = cli(runner, app, *args)
        assert res.exit_code == 2, (args, res.output)
        assert "bad" in _error_line(res), res.output
    with pytest.raises(UsageError, match="bad revision"):
        nfzoo.load("hf-hub:nfzoo/tiny", revision=rev, download=True)
    assert hub.count == 0, f"requests were made: {hub.requests}"
    assert not escaped.exists()
    assert not [p for p in tmp_path.rglob("escaped*")]
    # a good branch name still works, and its ref lands in the repo's refs folder
    res = cli(runner, app, "pull", "hf-hub:nfzoo/tiny@main", "--json")
    assert res.exit_code == 0, res.output
    assert (_cache() / "models--nfzoo--tiny" / "refs" / "main").read_text() == sha


def test_the_ref_write_refuses_a_path_outside_refs(hub, monkeypatch, tmp_path):
    """Defence in depth: even with the revision check bypassed, write_ref does not leave refs/."""
    sha = "a" * 40
    with pytest.raises(UsageError):
        hub_files.write_ref("nfzoo/tiny", "../../../escaped", sha)
    monkeypatch.setattr(hub_files, "check_revision", lambda rev: rev)
    with pytest.raises(HubError, match="outside"):
        hub_files.write_ref("nfzoo/tiny", "../../../escaped", sha)
    with pytest.raises(HubError, match="outside"):
        hub_files.write_ref("nfzoo/tiny", "main", "../not-a-sha")
    assert not (tmp_path / "escaped").exists()
    assert hub_files.write_ref("nfzoo/tiny", "dev/x", sha).read_text() == sha


def test_a_bad_file_name_in_an_index_is_refused_and_listed_as_invalid(hub):
    from nfzoo.registry.plugins import Entry

    meta = {"repo_id": "nfzoo/tiny", "revision": "a" * 40, "status": "hub",
            "files": {"../../escaped": "0" * 64}}
    entry = Entry("pretrained", "evil", "evil", "p", meta)
    with pytest.raises(UsageError, match="not a plain relative path"):
        nfhub.spec_from_entry(entry)
    assert nfhub.source_of(entry) == "invalid"
    bad_repo = Entry("pretrained", "evil2", "evil2", "p", {**meta, "files": {}, "repo_id": "../x"})
    with pytest.raises(UsageError, match="repo_id of evil2"):
        nfhub.spec_from_entry(bad_repo)


# ---------------------------------------------------------------- answers from a hostile Hub
def test_a_hub_answering_a_commit_that_is_not_40_hex_writes_nothing(hub, tiny, tmp_path, runner, app):
    hub.bad_sha = "../../../escaped"
    res = cli(runner, app, "pull", "hf-hub:nfzoo/tiny")
    assert res.exit_code == 1 and "not a 40-hex commit sha" in _error_line(res)
    assert hub.url in _error_line(res)
    assert not [p for p in tmp_path.rglob("escaped*")]
    assert not list(_cache().rglob("snapshots/*/*"))


def test_a_hub_answering_an_etag_with_a_path_writes_nothing(hub, tiny, tmp_path, runner, app):
    """huggingface_hub names the blob after the HEAD's ETag: `../../../escaped` wrote outside the cache."""
    hub.etag = "../../../escaped"
    res = cli(runner, app, "pull", "hf-hub:nfzoo/tiny")
    assert res.exit_code == 1, res.output
    line = _error_line(res)
    assert "ETag" in line and "not a plain file name" in line and hub.url in line
    assert not [p for p in tmp_path.rglob("escaped*")]


# ---------------------------------------------------------------- timeouts
def test_a_hub_that_never_answers_ends_in_seconds(hub, runner, app, monkeypatch):
    """Item 3 (a): a server that accepts and never replies hung nfzoo for good. Now: exit 1 after about
    NFZOO_HUB_TIMEOUT, naming the endpoint and the variable; pull and push alike."""
    silent = SilentServer()
    try:
        monkeypatch.setenv("HF_ENDPOINT", silent.url)
        monkeypatch.setenv("NFZOO_HUB_TIMEOUT", "1")
        for args in (["pull", "hf-hub:nfzoo/tiny"], ["pull", "hf-hub:nfzoo/tiny@" + "b" * 40]):
            start = time.monotonic()
            res = cli(runner, app, *args)
            took = time.monotonic() - start
            assert res.exit_code == 1, res.output
            line = _error_line(res)
            assert silent.url in line and "did not answer within 1 s" in line and "NFZOO_HUB_TIMEOUT" in line
            assert took < 12, f"{args} took {took:.1f} s"
    finally:
        silent.stop()


def test_push_to_a_hub_that_never_answers_ends_in_seconds(hub, runner, app, monkeypatch, tmp_path):
    folder = _model_dir(tmp_path / "m", 6)
    silent = SilentServer()
    try:
        monkeypatch.setenv("HF_ENDPOINT", silent.url)
        monkeypatch.setenv("NFZOO_HUB_TIMEOUT", "1")
        start = time.monotonic()
        res = cli(runner, app, "push", str(folder), "--repo-id", "nfzoo/pushed")
        assert res.exit_code == 1, res.output
        line = _error_line(res)
        assert silent.url in line and "NFZOO_HUB_TIMEOUT" in line and "push" in line
        assert time.monotonic() - start < 12
    finally:
        silent.stop()


def test_a_download_that_stalls_mid_body_ends_in_seconds_and_a_later_pull_completes(hub, tiny, runner, app,
                                                                                     monkeypatch):
    """Item 3 (b): headers and half the body, then silence. The client's own retries (5, with sleeps) are
    cut short: the first timeout ends the pull."""
    folder, sha = tiny
    monkeypatch.setenv("NFZOO_HUB_TIMEOUT", "1")
    hub.stall_body = True
    start = time.monotonic()
    res = cli(runner, app, "pull", f"hf-hub:nfzoo/tiny@{sha}")
    took = time.monotonic() - start
    assert res.exit_code == 1, res.output
    line = _error_line(res)
    assert hub.url in line and "did not answer within 1 s" in line and "NFZOO_HUB_TIMEOUT" in line
    assert took < 12, f"took {took:.1f} s"
    hub.stall_body = False
    res = cli(runner, app, "pull", f"hf-hub:nfzoo/tiny@{sha}", "--json")
    assert res.exit_code == 0, res.output
    assert _same_weights(nfzoo.load(f"hf-hub:nfzoo/tiny@{sha}"), folder)


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf", "1e9"])
def test_a_bad_timeout_is_a_usage_error_naming_the_variable(hub, tiny, runner, app, monkeypatch, value):
    monkeypatch.setenv("NFZOO_HUB_TIMEOUT", value)
    res = cli(runner, app, "pull", "hf-hub:nfzoo/tiny")
    assert res.exit_code == 2 and "NFZOO_HUB_TIMEOUT" in _error_line(res)
    assert hub.count == 0


def test_the_timeout_applies_to_requests_and_nowhere_else(hub, monkeypatch):
    """Inside an nfzoo operation every request carries NFZOO_HUB_TIMEOUT; outside, huggingface_hub's
    requests are left as they were (the hooks do nothing)."""
    from huggingface_hub.utils import get_session

    monkeypatch.setenv("NFZOO_HUB_TIMEOUT", "7.5")
    seen = []
    with hub_http.hub_call("test"):
        session = get_session()
        session.event_hooks["request"].append(lambda r: seen.append(r.extensions["timeout"]))
        session.get(f"{hub.url}/api/models/nfzoo/none")
    session.get(f"{hub.url}/api/models/nfzoo/none", timeout=3)
    assert seen[0] == {"connect": 7.5, "read": 7.5, "write": 7.5, "pool": 7.5}
    assert seen[1]["read"] == 3
    session.event_hooks["request"].pop()


# ---------------------------------------------------------------- pull --force against a tampering Hub
def test_forced_pull_from_a_tampering_hub_keeps_the_verified_copy(hub, tiny, runner, app):
    folder, sha = tiny
    spec = f"hf-hub:nfzoo/tiny@{sha}"
    assert cli(runner, app, "pull", spec).exit_code == 0
    hub.corrupt("nfzoo/tiny", "model.safetensors")
    res = cli(runner, app, "pull", spec, "--force")
    assert res.exit_code == 1
    line = _error_line(res)
    assert "sha256" in line and "model.safetensors" in line and "kept" in line
    hub.reset_counts()
    assert _same_weights(nfzoo.load(spec), folder), "the verified copy is still there and loads"
    assert hub.count == 0
    res = cli(runner, app, "cache", "verify", spec, "--json")
    assert res.exit_code == 0 and all(d["ok"] for d in json.loads(res.stdout))
    assert not list((_cache() / ".locks").glob("nfzoo-keep-*")), "nothing kept is left behind"


def test_forced_pull_from_a_good_hub_still_replaces_a_damaged_copy(hub, tiny, runner, app):
    folder, sha = tiny
    spec = f"hf-hub:nfzoo/tiny@{sha}"
    assert cli(runner, app, "pull", spec).exit_code == 0
    blob = (_cache() / "models--nfzoo--tiny" / "snapshots" / sha / "model.safetensors").resolve()
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    res = cli(runner, app, "pull", spec, "--force", "--json")
    assert res.exit_code == 0, res.output
    assert _same_weights(nfzoo.load(spec), folder)


# ---------------------------------------------------------------- a read-only cache
def _read_only(monkeypatch, cache: Path):
    """What a user who cannot write the cache sees (the tests run as root, so chmod would not bite): every
    delete, rename or mkdir under the cache fails with EACCES."""
    def guard(fn):
        def wrapped(path, *args, **kwargs):
            if kwargs.get("dir_fd") is not None or str(os.fspath(path)).startswith(str(cache)):
                raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
            return fn(path, *args, **kwargs)
        return wrapped

    for name in ("unlink", "remove", "rmdir", "mkdir", "replace", "rename"):
        monkeypatch.setattr(os, name, guard(getattr(os, name)))


def test_a_tampered_blob_in_a_read_only_cache_is_refused_with_a_clear_error(hub, tiny, runner, app,
                                                                            monkeypatch):
    folder, sha = tiny
    spec = f"hf-hub:nfzoo/tiny@{sha}"
    assert cli(runner, app, "pull", spec).exit_code == 0
    blob = (_cache() / "models--nfzoo--tiny" / "snapshots" / sha / "config.json").resolve()
    blob.write_bytes(blob.read_bytes().replace(b'"levels": 1', b'"levels": 2'))
    _read_only(monkeypatch, _cache())
    with pytest.raises(ChecksumError, match="could not be deleted .*HF_HUB_CACHE"):
        nfzoo.load(spec)
    res = cli(runner, app, "pull", spec)
    assert res.exit_code == 1
    line = _error_line(res)
    assert "sha256" in line and "could not be deleted" in line and str(_cache()) in line
    assert "HF_HUB_CACHE" in line and "permissions" in line
    assert blob.exists()


def test_cache_rm_on_a_read_only_cache_says_so(hub, tiny, runner, app, monkeypatch):
    folder, sha = tiny
    spec = f"hf-hub:nfzoo/tiny@{sha}"
    assert cli(runner, app, "pull", spec).exit_code == 0
    with pytest.MonkeyPatch.context() as mp:
        _read_only(mp, _cache())
        for args in (["cache", "rm", "--all"], ["cache", "rm", spec]):
            res = cli(runner, app, *args)
            assert res.exit_code == 1, res.output
            line = _error_line(res)
            assert "could not remove" in line and str(_cache()) in line and "HF_HUB_CACHE" in line
    rows = json.loads(cli(runner, app, "cache", "ls", "--json").stdout)
    assert [r["revision"] for r in rows] == [sha], "nothing was reported removed that is still there"


def test_a_pull_into_a_read_only_cache_says_so(hub, tiny, runner, app, monkeypatch):
    folder, sha = tiny
    _read_only(monkeypatch, _cache())
    res = cli(runner, app, "pull", f"hf-hub:nfzoo/tiny@{sha}")
    assert res.exit_code == 1, res.output
    line = _error_line(res)
    assert str(_cache()) in line and "HF_HUB_CACHE" in line and "permissions" in line
