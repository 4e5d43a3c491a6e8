from nfzoo.testing import check_bijector
from nfzoo_example.layers import LeakyAffine


def test_leaky_affine_passes_the_testing_kit():
    check_bijector(LeakyAffine(channels=3), (2, 3, 5, 7))
