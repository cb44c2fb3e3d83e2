"""chaining+ on a dense grammar (v = m = 8): the class-structure search. Its own file, split from
test_chaining_plus.py (whose helpers and seeds it uses), so that make test runs it on one worker while the other
runs the rest of chaining+'s tests (pytest-xdist --dist loadscope gives each file to one worker)."""

import numpy as np
import pytest

from test_chaining_plus import fits  # tests/ is on the path (pytest's rootdir)


@pytest.mark.slow
def test_class_structure_finds_the_bottom_synonyms_of_a_dense_grammar():
    # v = m = 8, L = 3: every bottom pair is a rule, so only the tuples given (class, position) carry structure;
    # measured on seeds 10-14 at P = 1000: test error 0 and purity 1.0 on 5 of 5 with it, 0.81-0.86 and
    # purity <= 0.08 on 5 of 5 without it
    small = dict(restarts=3, remeasure_rounds=2)
    on = fits(1000, m=8, **small)
    off = fits(1000, m=8, class_structure=False, **small)
    assert sum(c.info_["synonym_purity"]["3"] == 1.0 for c, _ in on) >= 4
    assert sum(c.info_["synonym_purity"]["3"] == 1.0 for c, _ in off) <= 1
    assert np.mean([a for _, a in on]) > np.mean([a for _, a in off]) + 0.4
