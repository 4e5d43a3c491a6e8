"""Every first-party plugin exports its main names at its package top (`from nfzoo_cinc import CInCConv2d`),
each the very object of its home module, and importing the package (as registering the plugin does)
imports no torch."""
import importlib
import subprocess
import sys

import pytest

PACKAGES = ["nfzoo_cinc", "nfzoo_quad", "nfzoo_inverse_flow", "nfzoo_glem", "nfzoo_diffused_flows",
            "nfzoo_heads", "nfzoo_tarflow", "nfzoo_gallery"]
MAIN = {"nfzoo_cinc": {"CInCConv2d", "FInCUnit", "cinc_flow", "conv_step_flow", "wavefront_solve"},
        "nfzoo_quad": {"QuadCoupling", "quad_flow"},
        "nfzoo_inverse_flow": {"InverseConv2d", "inverse_flow"},
        "nfzoo_glem": {"MultiGaussianPrior", "GLEMFlow", "RFCMSampler", "glem"},
        "nfzoo_diffused_flows": {"DiffusionPrior", "DiffusionFlowModel", "DiffusionSampler", "ddpm",
                                 "diffused_flows"},
        "nfzoo_heads": {"synthesize", "inpaint", "score", "LatentAugment", "cnn_a"},
        "nfzoo_tarflow": {"TarFlow", "TarFlowBlock", "TarFlowModel", "TarFlowSampler", "tarflow"},
        "nfzoo_gallery": {"create_app"}}


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_is_its_home_module_object(package):
    pkg = importlib.import_module(package)
    assert MAIN[package] <= set(pkg.__all__)
    for name in pkg.__all__:
        obj = getattr(pkg, name)
        home = importlib.import_module(obj.__module__)
        assert home.__name__.startswith(f"{package}."), (name, home.__name__)
        assert getattr(home, name) is obj, name
        assert name in dir(pkg)
    namespace = {}
    exec(f"from {package} import *", namespace)
    assert {n: namespace[n] for n in pkg.__all__} == {n: getattr(pkg, n) for n in pkg.__all__}
    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(pkg, "no_such_name")


def test_importing_the_packages_and_their_entry_points_imports_no_torch():
    code = ("import sys\n"
            f"for p in {PACKAGES!r}:\n"
            "    __import__(p + '.plugin')\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "print('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def test_conv_step_flow_is_keyword_only():
    from nfzoo_cinc import CInCConv2d, conv_step_flow

    with pytest.raises(TypeError):
        conv_step_flow(CInCConv2d, (1, 8, 8), 2, 1, 8)
