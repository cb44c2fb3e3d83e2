"""The shared parameter checks: values pass through converted, bad ones name the parameter and the rule."""

import numpy as np
import pytest

from rhm.validation import check_bool, check_choice, check_float, check_int, check_tokens


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


@pytest.mark.parametrize("call, match", [
    (lambda: check_tokens(np.zeros(3, dtype=int), 4), r"^x has shape \(3,\), expected \(n, d=4\)$"),
    (lambda: check_tokens(np.zeros((2, 3), dtype=int), 4), r"^x has shape \(2, 3\), expected \(n, d=4\)$"),
    (lambda: check_tokens(np.zeros(3, dtype=int), nonempty=True),
     r"^x must have shape \(n, d\) with n, d >= 1, got \(3,\)$"),
    (lambda: check_tokens(np.zeros((0, 4), dtype=int), nonempty=True),
     r"^x must have shape \(n, d\) with n, d >= 1, got \(0, 4\)$"),
    (lambda: check_tokens(np.zeros((2, 4)), 4), r"^x must hold integer tokens \(not one-hot\), got dtype float64$"),
    (lambda: check_tokens(np.zeros((2, 4), dtype=bool)), "x must hold integer tokens"),
    (lambda: check_tokens(np.full((2, 4), -1)), "^x has negative tokens$"),
    (lambda: check_tokens(np.full((2, 4), 4), 4, 4), r"^x has tokens outside the vocabulary \[0, v=4\)$"),
    (lambda: check_tokens(np.full((2, 4), -1), 4, 4, vocab_label="V"),
     r"^x has tokens outside the vocabulary \[0, V=4\)$"),
    (lambda: check_tokens([[0, 1], [2]], name="tokens"), "^tokens is not a rectangular array"),
])
def test_check_tokens_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_check_tokens_passes_good_input_and_torch_tensors():
    x = check_tokens([[0, 3], [1, 2]], 2, 4)
    assert isinstance(x, np.ndarray) and x.shape == (2, 2)
    assert check_tokens(np.zeros((0, 2), dtype=np.uint8), 2, 4).shape == (0, 2)  # empty batches pass unless nonempty
    assert check_tokens(np.full((1, 2), 9), 2, 4, values=False).shape == (1, 2)  # shape and dtype only
    torch = pytest.importorskip("torch")
    t = torch.zeros(2, 4, dtype=torch.long)
    assert check_tokens(t, 4, 4, allow_torch=True) is t
    assert isinstance(check_tokens(t, 4, 4), np.ndarray)  # without allow_torch: converted, as np.asarray does
    with pytest.raises(ValueError, match="integer tokens"):
        check_tokens(torch.zeros(2, 4), 4, 4, allow_torch=True)
    with pytest.raises(ValueError, match=r"outside the vocabulary \[0, V=4\)"):
        check_tokens(torch.full((2, 4), 4), 4, 4, vocab_label="V", allow_torch=True)


def test_the_four_token_checks_are_one():
    # the grammar's parse (oracle), the sparse parse, inference and the learners all use check_tokens: the
    # same bad input gives the same message everywhere (up to the vocabulary each one accepts)
    from rhm import RHM, SparseRHM, inference
    from rhm.learners.kmeans import OneStepKMeans

    g, sp = RHM(4, 2, 2, 2, seed=0), SparseRHM(4, 2, 2, 1, s0=1, seed=0)
    floats = np.zeros((2, 4))
    for call in (lambda: g.parse(floats), lambda: sp.parse(floats), lambda: inference.class_posterior(g, floats),
                 lambda: OneStepKMeans().fit(floats, np.zeros(2, dtype=int))):
        with pytest.raises(ValueError, match=r"^x must hold integer tokens \(not one-hot\), got dtype float64$"):
            call()
    short = np.zeros((2, 3), dtype=int)
    for call in (lambda: g.parse(short), lambda: sp.parse(short), lambda: inference.class_posterior(g, short)):
        with pytest.raises(ValueError, match=r"^x has shape \(2, 3\), expected \(n, d=4\)$"):
            call()
    big = np.full((2, 4), 5)
    for call, label in ((lambda: g.parse(big), "v=4"), (lambda: sp.parse(big), "v\\+1=5"),
                        (lambda: inference.class_posterior(g, big), "V=4")):
        with pytest.raises(ValueError, match=rf"^x has tokens outside the vocabulary \[0, {label}\)$"):
            call()
