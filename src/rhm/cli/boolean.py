"""Command ``rhm boolean``: learn a random deep quadratic boolean function (App. C) and report the test MSE.

Registered on the main app when ``rhm.cli`` imports this module. Errors print one ``error: ...`` line on stderr
and exit with status 1 (``rhm.cli._common._run``).
"""

from __future__ import annotations

import time

import numpy as np
import typer

from .. import limits
from ..validation import check_float, check_int
from ._common import CliError, _emit, _run, app

#: seed layout: instance, training draw, test draw and learner all derive from --seed through SeedSequence
_INSTANCE, _TRAIN, _TEST = 0, 1, 2


@app.command()
def boolean(d: int = typer.Option(16, "--d", help="input dimension d (inputs uniform on {±1}^d)"),
            levels: int = typer.Option(2, "--levels", help="levels of the target: degrees 2, 4, ..., 2^levels"),
            train_size: int = typer.Option(1000, "--train-size", help="number of training samples"),
            test_size: int = typer.Option(2000, "--test-size", help="number of test samples"),
            seed: int = typer.Option(0, "--seed", help="seed of the instance, the data and the learner"),
            learner: str = typer.Option("layerwise", "--learner",
                                        help="layerwise (App. C learner) | shallow (degree-2^levels polynomial "
                                             "ridge) | mlp (two-layer ReLU net)"),
            coefficients: str = typer.Option("rademacher", "--coefficients",
                                             help="coefficient law: rademacher | gaussian | uniform"),
            ridge: float = typer.Option(None, "--ridge", help="ridge penalty (layerwise default 0, shallow 1e-10)"),
            as_json: bool = typer.Option(False, "--json", help="print one JSON object on stdout")):
    """Fit a learner to a random deep quadratic boolean function (Definition 31) and report its test MSE."""
    from .. import boolean as B

    def go():
        for name, val, lo in (("--d", d, 2), ("--levels", levels, 1), ("--train-size", train_size, 1),
                              ("--test-size", test_size, 1), ("--seed", seed, 0)):
            check_int(name, val, lo)
        if learner not in B.LEARNERS:
            raise CliError(f"--learner={learner!r} must be one of {', '.join(B.LEARNERS)}")
        if coefficients not in B.COEFFICIENTS:
            raise CliError(f"--coefficients={coefficients!r} must be one of {', '.join(B.COEFFICIENTS)}")
        if levels >= d.bit_length():  # 2**levels > d, without computing 2**levels for an absurd --levels
            raise CliError(f"--levels={levels} needs --d >= 2**levels"
                           + (f" = {2**levels}" if levels < 64 else "") + f", got --d={d}")
        limits.check_boolean_instance(d, levels)
        limits.check_boolean_sample(max(train_size, test_size), d, "--train-size" if train_size >= test_size
                                    else "--test-size")
        kwargs = {}
        if ridge is not None:
            if learner == "mlp":
                raise CliError("--ridge does not apply to --learner=mlp")
            kwargs["ridge"] = check_float("--ridge", ridge, 0.0)
        ss = np.random.SeedSequence(seed).spawn(3)
        t0 = time.perf_counter()
        f = B.DeepQuadratic.random(d, levels, coefficients=coefficients, seed=np.random.default_rng(ss[_INSTANCE]))
        x, y = f.sample(train_size, seed=np.random.default_rng(ss[_TRAIN]))
        tx, ty = f.sample(test_size, seed=np.random.default_rng(ss[_TEST]))
        model = B.make_learner(learner, levels=levels, seed=seed, **kwargs)
        t1 = time.perf_counter()
        model.fit(x, y)
        fit_seconds = time.perf_counter() - t1
        mse = float(np.mean((model.predict(tx) - ty) ** 2))
        out = {"learner": learner, "d": d, "levels": levels, "train_size": train_size, "test_size": test_size,
               "seed": seed, "coefficients": coefficients, "n_terms": len(f.terms),
               "target_variance": f.variance, "test_mse": mse, "relative_mse": mse / f.variance,
               "fit_seconds": fit_seconds}
        if learner == "layerwise":
            out["kept_per_layer"] = [int(layer.kept.size) for layer in model.layers_]
            out["terms_recovered"] = set(model.learned_terms()) == set(f.fourier())
        out["seconds"] = time.perf_counter() - t0
        human = (f"{learner} on {f!r}: test MSE {mse:.4g} (relative {mse / f.variance:.3g}) with "
                 f"n={train_size} in {out['seconds']:.2f} s")
        _emit(out, as_json, human)

    _run(go)
