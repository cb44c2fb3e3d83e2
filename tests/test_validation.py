"""The shared parameter checks: values pass through converted, bad ones name the parameter and the rule."""

import numpy as np
import pytest

from rhm.validation import check_bool, check_choice, check_float, check_int


def test_valid_values_come_back_as_plain_python_types():
    assert check_int("n", np.int64(3), 1) == 3 and type(check_int("n", np.int64(3), 1)) is int
    assert check_int("n", None, 1, none_ok=True) is None
    assert check_float("lr", np.float32(0.5), 0.0, strict=True) == 0.5
    assert check_choice("mode", "a", ("a", "b")) == "a"
    assert check_bool("flag", False) is False


@pytest.mark.parametrize("call, match", [
    (lambda: check_int("n", True, 0), "n=True must be an integer"),
    (lambda: check_int("n", 2.0, 0), "n=2.0 must be an integer"),
    (lambda: check_int("n", None, 1), "n=None must be an integer"),
    (lambda: check_int("n", 0, 1), "n=0 must be >= 1"),
    (lambda: check_int("n", 9, None, 8), "n=9 must be <= 8"),
    (lambda: check_int("n", 9, 1, 8), r"n=9 must be in \[1, 8\]"),
    (lambda: check_float("lr", float("nan")), "lr=nan must be a finite real number"),
    (lambda: check_float("lr", False), "lr=False must be a finite real number"),
    (lambda: check_float("lr", 0.0, 0.0, strict=True), r"lr=0.0 must be > 0.0"),
    (lambda: check_float("momentum", 1.0, 0.0, maximum=1.0), r"momentum=1.0 must be >= 0.0 and < 1.0"),
    (lambda: check_choice("mode", "c", ("a", "b")), r"mode='c' must be one of \('a', 'b'\)"),
    (lambda: check_bool("flag", 1), "flag=1 must be True or False"),
])
def test_bad_values_name_the_parameter_and_the_rule(call, match):
    with pytest.raises(ValueError, match=match):
        call()
