"""Experiment engine: sweeps, results store, runner, executors, sample complexity P*, report, `rhm reproduce`.

Layout (imports flow down this list, never up): ``config`` (RunConfig and its key) -> ``sweep`` (sweep
definitions) -> ``tasks`` (one run -> one result) -> ``executors`` (local process pool, Ray) -> ``store``
(SQLite) -> ``complexity`` (P*, bootstrap, fits: pure statistics) -> ``runner`` (run_configs, run_sweep,
run_adaptive) -> ``analysis`` / ``render`` / ``plots`` -> ``verdicts`` -> ``experiment`` (the Experiment record)
-> ``exp_paper`` / ``exp_deep`` / ``exp_boolean`` / ``exp_variants`` / ``exp_lm`` (the records, one module per
family) -> ``registry`` (every experiment by id) -> ``report`` -> ``reproduce``.

```python
from rhm.experiments import Sweep, GrammarGrid, LearnerSpec, Sizes, ResultStore, run_sweep

sweep = Sweep(name="cnn", grammars=[GrammarGrid(v=[4, 6], m="v", L=2)], learners=[LearnerSpec("cnn")],
              sizes=Sizes(unit="ncmL", logspace=(0.25, 8, 6)), seeds=[0, 1], test_size="auto")
with ResultStore("results.sqlite") as store:
    run_sweep(sweep, store)                 # local process pool; executor=RayExecutor("auto") for a cluster
    df = store.to_pandas(sweep="cnn")
```
Nothing here imports Ray unless the Ray executor is used.
"""

from .complexity import AdaptiveSearch, PStar, ScalingFit, adaptive_pstar, crossing, error_threshold, \
    estimate_pstar, fit_power_law
from .estimate import Estimate, estimate, planned_configs, reproduce_configs
from .config import SAMPLING, RunConfig
from .executors import LocalExecutor, RayExecutor, make_executor
from .runner import SweepOutcome, run_adaptive, run_configs, run_sweep
from .store import ResultStore
from .sweep import Adaptive, GrammarGrid, LearnerSpec, Sizes, Sweep, SweepError
from .tasks import execute, train_once, train_test_split

__all__ = ["Adaptive", "AdaptiveSearch", "Estimate", "GrammarGrid", "LearnerSpec", "LocalExecutor", "PStar",
           "RayExecutor", "ResultStore", "RunConfig", "SAMPLING", "ScalingFit", "Sizes", "Sweep", "SweepError",
           "SweepOutcome", "adaptive_pstar", "crossing", "error_threshold", "estimate", "estimate_pstar", "execute",
           "fit_power_law", "make_executor", "planned_configs", "reproduce_configs",
           "run_adaptive", "run_configs", "run_sweep", "train_once", "train_test_split"]
