"""Experiment engine: sweeps, results store, executors, sample complexity P*, plots, report, `rhm reproduce`.

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

from .complexity import (AdaptiveSearch, PStar, ScalingFit, adaptive_pstar, crossing, error_threshold,
                         estimate_pstar, fit_power_law)
from .estimate import Estimate, estimate, planned_configs, reproduce_configs
from .executors import LocalExecutor, RayExecutor, make_executor, run_configs, run_sweep
from .store import ResultStore
from .sweep import (Adaptive, GrammarGrid, LearnerSpec, RunConfig, Sizes, Sweep, SweepError, execute, nc_m_L,
                    p_max)

__all__ = ["Adaptive", "AdaptiveSearch", "Estimate", "GrammarGrid", "LearnerSpec", "LocalExecutor", "PStar",
           "RayExecutor", "ResultStore", "RunConfig", "ScalingFit", "Sizes", "Sweep", "SweepError", "adaptive_pstar",
           "crossing", "error_threshold", "estimate", "estimate_pstar", "execute", "fit_power_law", "make_executor",
           "nc_m_L", "p_max", "planned_configs", "reproduce_configs", "run_configs", "run_sweep"]
