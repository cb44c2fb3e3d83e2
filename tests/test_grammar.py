"""Grammar: rule shapes, non-ambiguity, both samplers, validation, JSON round trip and hostile files."""

import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import rhm
from rhm.grammar import RHM


@st.composite
def small_params(draw):
    s = draw(st.integers(2, 3))
    v = draw(st.integers(2, 6))
    L = draw(st.integers(1, 3))
    m = draw(st.integers(1, v ** (s - 1)))
    n_c = draw(st.integers(2, min(8, v**s // m)))
    return dict(v=v, m=m, s=s, L=L, n_classes=n_c)


def assert_unambiguous(g):
    for level, table in enumerate(g.rules):
        n_sym = g.n_classes if level == 0 else g.v
        assert table.shape == (n_sym, g.m, g.s)
        assert table.min() >= 0 and table.max() < g.v
        flat = table.reshape(-1, g.s)
        assert len(np.unique(flat, axis=0)) == len(flat)  # no tuple has two parents, no repeated rule


@settings(max_examples=40, deadline=None)
@given(small_params(), st.integers(0, 2**32 - 1))
def test_uniform_rules_shapes_and_unambiguous(p, seed):
    g = RHM(**p, seed=seed)
    assert_unambiguous(g)
    assert g.d == p["s"] ** p["L"]
    assert g.num_inputs == p["n_classes"] * p["m"] ** ((p["s"] ** p["L"] - 1) // (p["s"] - 1))


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 6), st.integers(2, 3), st.integers(1, 3), st.data())
def test_balanced_rules_keep_first_token_uniform(v, s, L, data):
    m = data.draw(st.integers(1, v ** (s - 1)))
    g = RHM(v, m, s, L, rules="balanced", seed=data.draw(st.integers(0, 1000)))
    assert_unambiguous(g)
    for table in g.rules:  # App. B: each first token appears in exactly m patches per level
        assert (np.bincount(table[..., 0].ravel(), minlength=v) == m).all()


def test_same_seed_same_rules_different_seed_different_rules():
    assert RHM(8, 4, 2, 3, seed=5) == RHM(8, 4, 2, 3, seed=5)
    assert RHM(8, 4, 2, 3, seed=5) != RHM(8, 4, 2, 3, seed=6)


def test_n_classes_differs_from_v():
    g = RHM(v=6, m=3, s=2, L=2, n_classes=10, seed=0)
    assert g.rules[0].shape == (10, 3, 2) and g.rules[1].shape == (6, 3, 2)
    assert_unambiguous(g)


def test_maximal_case_uses_every_tuple():
    g = RHM(v=4, m=4, s=2, L=2, seed=0)  # m = v^(s-1), n_c = v: every 2-tuple is a rule
    assert len(np.unique(g.rules[1].reshape(-1, 2), axis=0)) == 16


def test_rules_are_read_only():
    g = RHM(4, 2, 2, 2)
    with pytest.raises(ValueError):
        g.rules[0][0, 0, 0] = 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(v=8, m=4, s=1, L=3), r"s=1 must be >= 2"),
    (dict(v=8, m=4, s=2, L=0), r"L=0 must be >= 1"),
    (dict(v=8, m=0, s=2, L=3), r"m=0 must be >= 1"),
    (dict(v=1, m=1, s=2, L=3), r"v=1 must be >= 2"),
    (dict(v=8, m=9, s=2, L=3), r"m=9 exceeds v\*\*\(s-1\)=8"),
    (dict(v=4, m=4, s=2, L=1, n_classes=5), r"m\*n_classes=20 exceeds v\*\*s=16"),
    (dict(v=8, m=4.0, s=2, L=3), r"m=4.0 must be an integer"),
    (dict(v=8, m=4, s=2, L=True), r"L=True must be an integer"),
    (dict(v="8", m=4, s=2, L=3), r"v='8' must be an integer"),
    (dict(v=8, m=4, s=2, L=3, rules="zipf"), r"rules='zipf' is not a rule sampler"),
    (dict(v=8, m=4, s=2, L=3, n_classes=4, rules="balanced"), r"requires n_classes == v"),
    (dict(v=8, m=4, s=2, L=3, n_classes=1), r"n_classes=1 must be >= 2"),
    (dict(v=8, m=4, s=2, L=3, seed=-1), r"seed=-1 must be >= 0"),
])
def test_invalid_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RHM(**kwargs)


def test_depth_one_only_needs_top_level_room():
    g = RHM(v=2, m=2, s=2, L=1, n_classes=2)  # 4 tuples, 2 classes x 2 rules: fine although m*v check n/a
    assert g.rules[0].shape == (2, 2, 2)


def test_json_round_trip(tmp_path):
    for g in (RHM(8, 4, 2, 3, seed=3), RHM(5, 3, 3, 2, n_classes=7, seed=1), RHM(8, 4, 2, 3, rules="balanced")):
        path = tmp_path / "g.json"
        g.save(path)
        h = RHM.load(path)
        assert h == g and h.params() == g.params()
        assert not list(tmp_path.glob(".*tmp"))  # no temp file left behind


def _write(tmp_path, obj):
    path = tmp_path / "bad.json"
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d.update(format="pickle"), "not an rhm grammar file"),
    (lambda d: d.update(version=99), "unsupported grammar format version 99"),
    (lambda d: d.pop("rules"), r"lacks field\(s\) \['rules'\]"),
    (lambda d: d.update(m=-1), "m=-1 must be >= 1"),
    (lambda d: d.update(v=2.5), "v=2.5 must be an integer"),
    (lambda d: d["rules"].pop(), "list of L=2 tables"),
    (lambda d: d["rules"][1][0][0].__setitem__(0, 99), r"symbols in \[0, v=4\)"),
    (lambda d: d["rules"][1][0][0].__setitem__(0, "os.system('x')"), "integer symbols"),
    (lambda d: d["rules"][1][0][0].__setitem__(0, 10**400), "integer symbols"),
    (lambda d: d["rules"][1][0][0].__setitem__(0, True), "integer symbols"),
    (lambda d: d["rules"][1][0].pop(), "shape"),
    (lambda d: d["rules"][1].__setitem__(0, d["rules"][1][1]), "ambiguous"),
    (lambda d: d["rules"].__setitem__(0, 7), "nested list"),
    (lambda d: d.update(rule_sampler="balanced"), "first-token counts"),
    (lambda d: d.update(seed="x"), "seed must be an integer"),
    (lambda d: d.update(v=10**6, m=10**3), "too large"),
])
def test_load_refuses_corrupted_files(tmp_path, mutate, match):
    data = RHM(4, 2, 2, 2, seed=0).to_dict()
    mutate(data)
    with pytest.raises(ValueError, match=match):
        RHM.load(_write(tmp_path, data))


@pytest.mark.parametrize("text, match", [
    ('{"format": "rhm-grammar", "version": 1, "v": 4', "not valid JSON"),  # truncated
    ("[" * 100000 + "]" * 100000, "nested too deeply|must be an object|not valid JSON"),
    ("\xff\xfe garbage", "not valid JSON"),
    ("[1, 2, 3]", "must be an object"),
    ("", "not valid JSON"),
])
def test_load_refuses_hostile_text(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        RHM.load(_write(tmp_path, text))


def test_load_missing_file(tmp_path):
    with pytest.raises(ValueError, match="cannot read grammar file"):
        RHM.load(tmp_path / "nope.json")


def test_truncated_real_file_never_crashes(tmp_path):
    text = json.dumps(RHM(8, 4, 2, 3).to_dict())
    for cut in range(0, len(text), 97):
        with pytest.raises(ValueError):
            RHM.load(_write(tmp_path, text[:cut]))


def test_from_rules_validates():
    g = RHM(4, 2, 2, 2, seed=0)
    h = RHM.from_rules([r.copy() for r in g.rules], v=4)
    assert h == g
    bad = [r.copy() for r in g.rules]
    bad[1][1, 0] = bad[1][0, 0]
    with pytest.raises(ValueError, match="ambiguous"):
        RHM.from_rules(bad, v=4)
    with pytest.raises(ValueError, match="dtype"):
        RHM.from_rules([r.astype(float) for r in g.rules], v=4)


def test_token_dtype_is_smallest():
    assert RHM(8, 2, 2, 2).token_dtype == np.uint8
    assert RHM(300, 2, 2, 1).token_dtype == np.uint16


def test_public_api_names():
    assert rhm.RHM is RHM and callable(rhm.oracle.q) and callable(rhm.oracle.signal_gaps)
