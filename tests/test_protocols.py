"""The anchor papers' LM protocols (rhm.protocols): presets, the CLI option, sweeps, one-token masking."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import rhm
from rhm import lm_tasks, protocols
from rhm.cli import app


def test_presets_name_their_paper_task_and_cpu_differences():
    cw, gb = protocols.get("cagnetta-wyart-2024"), protocols.get("garnier-brun-2025")
    assert (cw.learner, cw.task, gb.learner, gb.task, gb.mask_rate) == ("transformer", "next-token", "transformer",
                                                                       "masked", "one")
    assert "2406.00048" in cw.paper and "2408.15138" in gb.paper and cw.cpu_differences and gb.cpu_differences
    for p in (cw, gb):  # Adam: the transformer's AdamW without weight decay
        assert p.params["weight_decay"] == 0.0
        assert set(p.params) <= set(rhm.learners.get(p.learner).defaults())  # sweeps accept every key
    assert gb.learner_params(4)["depth"] == 4 and cw.learner_params(4)["depth"] == 2  # encoder depth = L
    with pytest.raises(ValueError, match=r"protocol='bert' must be one of"):
        protocols.get("bert")


def test_sweep_fields_build_a_valid_sweep():
    from rhm.experiments import GrammarGrid, Sizes, Sweep

    f = protocols.sweep_fields("garnier-brun-2025", L=3)
    sw = Sweep(name="gb", grammars=[GrammarGrid(v=4, m=2, s=2, L=3, seed=[0])], sizes=Sizes(values=[64]),
               seeds=[0], test_size=32, sampling="iid", **f)
    runs = sw.expand()
    assert len(runs) == 1 and runs[0].objective == "masked" and runs[0].extras["mask_rate"] == "one"
    assert runs[0].params["depth"] == 3


def test_one_masked_token_per_row():
    g = rhm.RHM(4, 2, 2, 2, seed=0)
    data = lm_tasks.sample(g, "masked", 200, seed=1, mask_rate="one")
    assert ((data.y >= 0).sum(1) == 1).all() and ((data.x == 4) == (data.y >= 0)).all()
    assert len(np.unique(np.argmax(data.y >= 0, 1))) == 4  # every position gets hidden somewhere
    with pytest.raises(ValueError, match=r"mask_rate='two' must be a probability in \(0, 1\) or 'one'"):
        lm_tasks.sample(g, "masked", 10, mask_rate="two")


def test_cli_protocol_runs_and_refuses_conflicts():
    runner = CliRunner()
    base = ["train", "--v", "8", "--m", "2", "--L", "2", "--train-size", "60", "--test-size", "20",
            "--sampling", "iid", "--hp", "max_steps=20", "--hp", "width=16", "--json"]
    res = runner.invoke(app, base + ["--protocol", "garnier-brun-2025"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["task"] == "masked" and out["protocol"]["protocol"] == "garnier-brun-2025"
    assert out["params"]["width"] == 16 and out["params"]["depth"] == 2 and out["remask"] == "one per row"
    assert out["selected_on"] == "val_cross_entropy"
    res = runner.invoke(app, base + ["--protocol", "cagnetta-wyart-2024", "--task", "masked"])
    assert res.exit_code == 1 and "error: --task masked conflicts with --protocol cagnetta-wyart-2024" in res.output
    res = runner.invoke(app, base + ["--protocol", "nope"])
    assert res.exit_code == 1 and "error: --protocol: protocol='nope' must be one of" in res.output
