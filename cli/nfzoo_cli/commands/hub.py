"""`nfzoo pull` and `nfzoo push`: a pretrained model's files from the Hub (sha256-checked), a model
directory to the Hub (with its model card and the Hub's `.eval_results/` files)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..toolkit import err, fail, out, print_json


class _PullProgress:
    """A rich progress display on stderr, fed by nfzoo.hub.fetch with (file, bytes done, total) per file; it
    starts with the first byte, so a pull that downloads nothing prints nothing here."""

    def __init__(self):
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), console=err, transient=False)
        self.tasks: dict = {}

    def __call__(self, name: str, done: int, total: Optional[int]) -> None:
        if not self.tasks:
            self.progress.start()
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(name, total=total)
        self.progress.update(self.tasks[name], completed=done, total=total)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.tasks:
            self.progress.stop()


def pull_cmd(name: str = typer.Argument(..., help="pretrained name, family name, ORG/NAME or hf-hub:ORG/NAME[@REV]"),
             revision: Optional[str] = typer.Option(None, "--revision", help="commit sha, branch or tag "
                                                    "[default: the commit the zoo index pins]"),
             force: bool = typer.Option(False, "--force", help="download again even if cached"),
             json_: bool = typer.Option(False, "--json", help="print the result as JSON")):
    """Download a pretrained model's files into the Hugging Face cache and check their sha256."""
    from nfzoo.hub import fetch as hub
    from nfzoo.loading.pretrained import parse_model_name

    parsed = parse_model_name(name)         # the one name rule (nfzoo.load's): ORG/NAME is a repo unless a folder
    if parsed.kind == "dir":
        fail(f"{name} is a local directory: there is nothing to pull")
    spec = hub.spec_for(parsed.hub_id if parsed.kind == "hub" else name, revision)
    with _PullProgress() as report:
        res = hub.resolve(spec, download=True, force=force, progress=report)
    if json_:
        print_json(res.to_json())
    elif res.source == "embedded":
        err.print(f"{res.name} is embedded in the zoo package ({res.path}): nothing to download")
    else:
        assert res.revision is not None, "from the cache or the Hub: the commit the files come from"
        what = f"pulled {', '.join(res.downloaded)}" if res.downloaded else "already cached"
        err.print(f"[green]{what}[/]: {res.name} = {res.repo_id}@{res.revision[:10]} -> {res.path}",
                  highlight=False, soft_wrap=True)


def push_cmd(directory: Path = typer.Argument(..., help="model directory (config.json + model.safetensors), or a "
                                              "site folder of `nfzoo export --format web` (to a static Space)"),
             repo_id: str = typer.Option(..., "--repo-id", help="ORG/NAME on the Hub (created if needed)"),
             revision: Optional[str] = typer.Option(None, "--revision", help="branch to commit to [main]"),
             token: Optional[str] = typer.Option(None, "--token",
                                                 help="Hub token [HF_TOKEN or the saved login]"),
             private: bool = typer.Option(False, "--private", help="create the repo private"),
             message: Optional[str] = typer.Option(None, "--message", "-m", help="commit message"),
             json_: bool = typer.Option(False, "--json", help="print the result as JSON")):
    """Upload a model directory to the Hub: config.json, model.safetensors, a README.md model card
    (generated when the directory has none: library_name nfzoo, tags, datasets, a model-index of the run's
    test bpd and of its samples/*.json results) and, for a data set with a Hub dataset id, one
    .eval_results/*.yaml file per result. Prints the commit sha and sha256 pins for the zoo index.
    A site folder written by `nfzoo export NAME --format web` (it holds site.json) goes to a static Space
    ORG/NAME instead, every file of it (--revision does not apply)."""
    from nfzoo.hub import publish

    if (directory / "site.json").is_file():
        from nfzoo.errors import UsageError
        from nfzoo.export.web import publish_site

        if revision is not None:
            raise UsageError("--revision does not apply to a site: a Space is pushed to its main branch")
        with err.status(f"pushing the site {directory} to the Space {repo_id}"):
            site = publish_site(directory, repo_id, token=token, private=private or None, commit_message=message)
        if json_:
            print_json(site)
            return
        err.print(f"[green]pushed[/] the site {directory} to the Space {site['repo_id']} at {site['revision']}: "
                  f"{site['url']}", highlight=False, soft_wrap=True)
        return

    with err.status(f"pushing {directory} to {repo_id}"):
        doc = publish.push(directory, repo_id, token=token, revision=revision, private=private or None,
                           commit_message=message)
    if json_:
        print_json(doc)
        return
    err.print(f"[green]pushed[/] {directory} to {doc['repo_id']} ({doc['branch']}) at {doc['revision']}",
              highlight=False)
    for name in doc["eval_results"]:
        err.print(f"evaluation result: {name}", highlight=False)
    for name in doc["removed"]:
        err.print(f"removed the earlier evaluation result {name}", highlight=False)
    out.print(json.dumps({k: doc[k] for k in ("repo_id", "revision", "files")}, indent=2), highlight=False)


def register(app: typer.Typer) -> None:
    """Add `pull` and `push` to `app`."""
    app.command("pull")(pull_cmd)
    app.command("push")(push_cmd)
