"""Fixtures shared by the core's tests (tests/) and the first-party plugins' tests (plugins/*/tests)."""
import pytest


@pytest.fixture
def runner():
    from typer.testing import CliRunner

    return CliRunner()


@pytest.fixture
def app():
    from nfzoo_cli.app import build_app

    return build_app()
