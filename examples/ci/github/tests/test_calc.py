import pytest

from calc import add, mul


@pytest.mark.parametrize("n", range(25))
def test_add(n):
    assert add(n, 1) == n + 1


@pytest.mark.parametrize("n", range(15))
def test_mul(n):
    assert mul(n, 2) == 2 * n
