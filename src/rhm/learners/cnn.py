"""End-to-end hierarchical CNN (Cagnetta et al. 2024, PRX 14, 031001): the baseline every learner is measured against.

The network matches the tree: L = log_s(d) layers of ``F.conv1d`` with kernel = stride = s (non-overlapping
patches), ReLU, width h, then a linear readout. Layer k (1 = bottom) sees the input through patches of s**k
tokens, i.e. it represents the level-(L-k) symbols (levels: 0 = root, L = input).

Parametrisations (both with weights ~ N(0, 1) and pre-activations divided by sqrt(fan_in) = sqrt(c_in * s)):

* ``"mf"`` (mean-field / maximal-update, the literature's feature-learning regime): output = β·f_L / h and the
  SGD learning rate is multiplied by h (Adam, which normalises gradients, uses lr as given);
* ``"standard"``: output = β·f_L / sqrt(h), learning rate as given.

Training: cross-entropy, SGD with momentum and a per-step cosine schedule, or Adam; shuffled minibatches drawn
with an explicit ``torch.Generator``; one-hot encoding per batch from the integer tokens; early stop once the
epoch-mean training loss stays below ``loss_threshold`` for ``patience`` epochs; optional validation split
(the weights with the best validation accuracy are kept).

The shared training loop (:class:`TorchNetLearner`) is also used by the fully connected network in
``shallow.py``.
"""

from __future__ import annotations

import copy
import math
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from . import register
from ..validation import check_bool, check_choice, check_float, check_int
from .base import Learner, check_seed, resolve_device, resolve_dtype

PARAMETRIZATIONS = ("mf", "standard")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "constant")
IMPLS = ("conv1d", "matmul")
COLLAPSE_STEPS = 1000  # fewer SGD steps than this are too short a run to call a flat loss a collapse
_PREDICT_BATCH = 8192


# ----------------------------------------------------------------------------------------- validation helpers
def infer_s(d: int, s=None, grammar=None) -> int:
    """Patch size: `s` if given, else the grammar's, else the smallest s >= 2 with d a power of s."""
    if s is None and grammar is not None:
        s = grammar.s
    if s is None:
        for cand in range(2, d + 1):
            k = round(math.log(d, cand))
            if cand**k == d:
                s = cand
                break
        else:
            raise ValueError(f"cannot infer s: d={d} is not a power of an integer >= 2; pass s=")
    s = check_int("s", s, 2)
    L = round(math.log(d, s)) if d > 1 else 0
    if L < 1 or s**L != d:
        raise ValueError(f"s={s}: the input length d={d} must be a power of s (d = s**L with L >= 1)")
    return s


# ------------------------------------------------------------------------------------------------ networks
class HierarchicalCNN(torch.nn.Module):
    """L non-overlapping conv layers (kernel = stride = s), ReLU, readout. Input: one-hot (B, v, s**L).

    impl="conv1d" runs each layer as ``F.conv1d(stride=s)``; impl="matmul" runs the same maps as one matrix
    product per layer on channels-last activations (B, positions, channels) -> (B, positions/s, s*channels),
    identical up to float rounding and faster on CPU (mkldnn's conv1d backward dominates at these sizes).
    """

    def __init__(self, v, n_classes, width, s, L, parametrization, bias, generator, dtype, impl="conv1d"):
        super().__init__()
        self.s, self.L, self.width, self.impl = s, L, width, impl
        chans = [v] + [width] * L
        self.weights = torch.nn.ParameterList(
            torch.nn.Parameter(torch.randn(chans[k + 1], chans[k], s, generator=generator, dtype=dtype))
            for k in range(L))
        self.biases = torch.nn.ParameterList(
            torch.nn.Parameter(torch.zeros(width, dtype=dtype)) for _ in range(L)) if bias else None
        self.scales = [1.0 / math.sqrt(chans[k] * s) for k in range(L)]
        self.beta = torch.nn.Parameter(torch.randn(n_classes, width, generator=generator, dtype=dtype))
        self.out_scale = 1.0 / width if parametrization == "mf" else 1.0 / math.sqrt(width)

    def _layers(self, x):
        """Yield the post-ReLU activation of every layer (conv1d: (B, h, P); matmul: (B, P, h))."""
        if self.impl == "matmul":
            x = x.transpose(1, 2).contiguous()  # (B, d, v) channels last
        for k, w in enumerate(self.weights):
            b = self.biases[k] if self.biases is not None else None
            if self.impl == "conv1d":
                x = F.relu(F.conv1d(x, w * self.scales[k], b, stride=self.s))
            else:
                n, p, c = x.shape
                wm = (w * self.scales[k]).transpose(1, 2).reshape(w.shape[0], self.s * c)
                x = F.relu(F.linear(x.reshape(n, p // self.s, self.s * c), wm, b))
            yield x

    def features(self, x):
        """Post-ReLU activations of every layer, bottom first: [(B, h, d / s**k) for k = 1..L]."""
        out = list(self._layers(x))
        return out if self.impl == "conv1d" else [a.transpose(1, 2) for a in out]

    def forward(self, x):
        for a in self._layers(x):
            pass
        return F.linear(a.flatten(1), self.beta) * self.out_scale


# ------------------------------------------------------------------------------------------- shared training
class TorchNetLearner(Learner):
    """Shared minibatch training of a torch network on one-hot-per-batch inputs (subclasses build the net).

    Subclasses implement ``_build(generator, dtype)`` -> nn.Module taking one-hot (B, v, d) input and returning
    logits, and ``_layer_features(module, onehot)`` -> list of (B, features) tensors (the hidden layers).
    """

    def _check_common(self):
        check_int("width", self.width, 1)
        check_choice("parametrization", self.parametrization, PARAMETRIZATIONS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_float("lr", self.lr, 0.0, strict=True)
        check_float("momentum", self.momentum, 0.0, maximum=1.0)
        check_float("weight_decay", self.weight_decay, 0.0)
        check_int("batch_size", self.batch_size, 1)
        check_int("epochs", self.epochs, 0)
        check_int("max_steps", self.max_steps, 1, none_ok=True)
        check_float("loss_threshold", self.loss_threshold, 0.0)
        check_int("patience", self.patience, 1)
        check_float("val_fraction", self.val_fraction, 0.0, maximum=1.0)
        check_bool("bias", self.bias)
        check_seed(self.seed)
        resolve_dtype(self.dtype)
        resolve_device(self.device)

    # -- one-hot per batch ------------------------------------------------------------------------------
    def _onehot(self, xb):
        """(B, d) integer tokens on the device -> (B, v, d) one-hot in the model dtype (made per batch).

        Written channels-first and contiguous (what conv1d wants) with one scatter, no int64 one-hot temporary.
        """
        out = torch.zeros(xb.shape[0], self.v_, xb.shape[1], dtype=self.dtype_, device=xb.device)
        return out.scatter_(1, xb.long().unsqueeze(1), 1.0)

    def _tokens(self, x):
        dt = torch.uint8 if self.v_ <= 256 else torch.int32
        return torch.as_tensor(np.ascontiguousarray(x), dtype=dt).to(self.device_)

    def _fit(self, x, y):
        self._check_common()
        self._validate_shape()
        self.device_ = resolve_device(self.device)
        self.dtype_ = resolve_dtype(self.dtype)
        gen = torch.Generator().manual_seed(check_seed(self.seed))
        t_start = time.perf_counter()

        n = len(x)
        n_val = int(round(self.val_fraction * n)) if self.val_fraction > 0 else 0
        if n_val:
            if n - n_val < 1:
                raise ValueError(f"val_fraction={self.val_fraction} leaves no training sample out of n={n}")
            perm = torch.randperm(n, generator=gen).numpy()
            x_val, y_val = x[perm[:n_val]], y[perm[:n_val]]
            x, y = x[perm[n_val:]], y[perm[n_val:]]
            n = len(x)

        self.net_ = self._build(gen, self.dtype_).to(self.device_)
        net = self.net_
        # mean-field: SGD's lr is scaled by h (the readout's 1/h shrinks every gradient by h); Adam normalises
        # gradients, so its lr is used as given
        mf_sgd = self.parametrization == "mf" and self.optimizer == "sgd"
        lr = self.lr * (self.width if mf_sgd else 1.0)
        params = list(net.parameters())
        if self.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=lr, momentum=self.momentum, weight_decay=self.weight_decay)
        else:
            opt = torch.optim.Adam(params, lr=lr, weight_decay=self.weight_decay)

        xt, yt = self._tokens(x), torch.as_tensor(y.astype(np.int64)).to(self.device_)
        bs = min(self.batch_size, n)
        steps_per_epoch = math.ceil(n / bs)
        epochs = self.epochs
        if self.max_steps is not None:  # step budget: the schedule spans min(epochs, max_steps) worth of steps
            epochs = min(epochs, max(1, math.ceil(self.max_steps / steps_per_epoch)))
        total_steps = max(1, epochs * steps_per_epoch)
        base_lrs = [grp["lr"] for grp in opt.param_groups]
        losses, val_hist = [], []
        best_val, best_state = -1.0, None
        below, step, epoch = 0, 0, 0
        stopped = "max_epochs"
        net.train()
        for epoch in range(1, epochs + 1):
            perm = torch.randperm(n, generator=gen).to(self.device_)
            total = torch.zeros((), dtype=torch.float64, device=self.device_)
            for i in range(steps_per_epoch):
                idx = perm[i * bs:(i + 1) * bs]
                if self.schedule == "cosine":
                    f = 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
                    for grp, b in zip(opt.param_groups, base_lrs):
                        grp["lr"] = b * f
                logits = net(self._onehot(xt[idx]))
                loss = F.cross_entropy(logits, yt[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total.add_(loss.detach(), alpha=len(idx))
                step += 1
            epoch_loss = float(total) / n
            if not math.isfinite(epoch_loss):  # JSON-safe record: None marks a non-finite loss
                losses.append(None)
                stopped = "diverged"
                break
            losses.append(epoch_loss)
            if n_val:
                acc = float((self._predict_tokens(x_val) == y_val).mean())
                val_hist.append(acc)
                if acc > best_val:
                    best_val, best_state = acc, copy.deepcopy(net.state_dict())
                net.train()
            below = below + 1 if epoch_loss < self.loss_threshold else 0
            if below >= self.patience:
                stopped = "loss_threshold"
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        # collapse: after a real training run (>= COLLAPSE_STEPS steps) the training loss of the kept network (the
        # last epoch's, or the best validation epoch's) is near that of predicting the label frequencies, i.e. the
        # network learnt nothing even on its training set (the CNN with weight decay at m = 8, L = 3 never leaves
        # it; without, at m = 4, L = 4 it falls, then returns to it)
        freq = np.bincount(y, minlength=self.n_classes_) / n
        chance = float(-(freq[freq > 0] * np.log(freq[freq > 0])).sum())
        kept = losses[int(np.argmax(val_hist))] if best_state is not None else (losses[-1] if losses else None)
        collapsed = bool(step >= COLLAPSE_STEPS and kept is not None and chance > 0 and kept >= 0.9 * chance)
        if collapsed:
            hint = "try weight_decay=0" if self.weight_decay > 0 else "try a smaller lr"
            warnings.warn(f"{self.name}: after {step} steps the training loss of the kept network is {kept:.3f}, "
                          f">= 90% of {chance:.3f}, the loss of predicting the label frequencies: the network "
                          f"collapsed (learnt nothing on its training set); {hint}", RuntimeWarning, stacklevel=3)
        self.info_.update({
            "collapsed": collapsed, "chance_loss": chance,
            "epochs_run": epoch if epochs else 0, "epochs_scheduled": epochs, "steps": step, "stopped": stopped,
            "final_train_loss": losses[-1] if losses else None, "train_loss_history": losses,
            "n_train": n, "n_val": n_val, "fit_seconds": time.perf_counter() - t_start,
            "device": str(self.device_),
        })
        if n_val:
            self.info_.update({"val_accuracy_history": val_hist, "best_val_accuracy": best_val})

    def _validate_shape(self):
        pass

    # -- inference -------------------------------------------------------------------------------------
    @torch.no_grad()
    def _predict_tokens(self, x):
        self.net_.eval()
        out = []
        for i in range(0, len(x), _PREDICT_BATCH):
            xb = self._tokens(x[i:i + _PREDICT_BATCH])
            out.append(self.net_(self._onehot(xb)).argmax(1).cpu())
        return torch.cat(out).numpy()

    def _predict(self, x):
        return self._predict_tokens(x)

    @torch.no_grad()
    def decision_function(self, x) -> np.ndarray:
        """Logits (n, n_classes) as float64."""
        x = self._check_xy(x, fitting=False)
        self.net_.eval()
        out = [self.net_(self._onehot(self._tokens(x[i:i + _PREDICT_BATCH]))).double().cpu()
               for i in range(0, len(x), _PREDICT_BATCH)]
        return torch.cat(out).numpy()

    @torch.no_grad()
    def hidden(self, x) -> list[np.ndarray]:
        """Post-ReLU activations of the hidden layers, bottom first: [(n, features_k) for k = 1..K] (float64).

        This is the protocol :func:`rhm.sensitivity` uses (f_k of Cagnetta et al.'s synonymic sensitivity).
        """
        x = self._check_xy(x, fitting=False)
        self.net_.eval()
        parts = None
        for i in range(0, len(x), _PREDICT_BATCH):
            feats = self._layer_features(self.net_, self._onehot(self._tokens(x[i:i + _PREDICT_BATCH])))
            feats = [f.flatten(1).double().cpu() for f in feats]
            parts = [[f] for f in feats] if parts is None else [p + [f] for p, f in zip(parts, feats)]
        return [torch.cat(p).numpy() for p in parts]


@register
class CNN(TorchNetLearner):
    """Hierarchical CNN trained end to end (see module docstring).

    Defaults: width 256, mean-field readout, SGD with momentum 0.9, lr 0.2 (x width), batch 16, weight decay
    5e-6, cosine schedule over 100 epochs or 20000 steps, whichever is fewer. Tuned on v=n_c=8, m=4, s=2, L=3
    (uniform rules, seeds 0-2), where they reach the literature's threshold (test error <= 0.1 (1 - 1/n_c)) at
    P* = 726, 686, 616 training samples (median 686; n_c m^L = 512), against ~1,400 (batch 128) and ~730
    (batch 8) for a prior conv implementation without weight decay (benchmarks/baselines.py). What mattered:
    the small weight decay (per step the weights shrink by lr*h*wd ~ 2.6e-4; 2x more made the network
    collapse to zero on one seed at P=700), a full cosine schedule, and the SGD noise of small batches (batch
    16 at lr 0.2 ~ batch 8 at lr 0.1, at half the steps). With weight decay the training loss levels off near
    0.05, so the loss-threshold stop only triggers with weight_decay=0. On deeper, denser grammars the same
    weight decay can make the network collapse to a constant output (v = n_c = m = 8, L = 3: the training loss
    stays at log 8 for 51,200 steps at P = 8,192; without weight decay P* ~ 3,740): ``info_["collapsed"]``
    flags, and a RuntimeWarning reports, a fit whose final training loss is >= 90% of the loss of predicting
    the label frequencies.

    Parameters
    ----------
    width: channels h of every layer.
    s: patch size (kernel = stride); None = the grammar's s if fit with grammar=, else inferred from d.
    parametrization: "mf" (output / h, lr x h) or "standard" (output / sqrt(h)).
    optimizer: "sgd" (with `momentum`) or "adam".
    lr: base learning rate (multiplied by width for SGD under "mf"; Adam uses it as given).
    momentum: SGD momentum.
    weight_decay: L2 coefficient passed to the optimiser.
    batch_size: minibatch size.
    epochs: maximum number of epochs (0 = keep the random initialisation, e.g. for sensitivity baselines).
    max_steps: step budget (None = no cap): at most ceil(max_steps / steps_per_epoch) epochs are run, so
        that large training sets cost a bounded number of SGD steps; the schedule spans the epochs run.
    schedule: "cosine" (per step, over the scheduled steps) or "constant".
    loss_threshold, patience: stop once the epoch-mean training loss is below loss_threshold for patience
        consecutive epochs.
    val_fraction: fraction of the training set held out; the weights with the best validation accuracy are kept.
    bias: add a (weight-shared) bias to every conv layer.
    impl: "conv1d" (F.conv1d with stride s) or "matmul" (the same layers as patch matrix products; faster on
        CPU, identical up to rounding).
    dtype: "float32" or "float64".
    device: "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    seed: seeds initialisation, minibatch order and the validation split (explicit torch.Generator).
    """

    name = "cnn"

    def __init__(self, width=256, s=None, parametrization="mf", optimizer="sgd", lr=0.2, momentum=0.9,
                 weight_decay=5e-6, batch_size=16, epochs=100, max_steps=20000, schedule="cosine",
                 loss_threshold=1e-5, patience=2, val_fraction=0.0, bias=False, impl="conv1d", dtype="float32",
                 device="auto", seed=0):
        self.width = width
        self.s = s
        self.parametrization = parametrization
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.max_steps = max_steps
        self.schedule = schedule
        self.loss_threshold = loss_threshold
        self.patience = patience
        self.val_fraction = val_fraction
        self.bias = bias
        self.impl = impl
        self.dtype = dtype
        self.device = device
        self.seed = seed

    def _validate_shape(self):
        check_choice("impl", self.impl, IMPLS)
        self.s_ = infer_s(self.d_, self.s, self.grammar_)
        self.L_ = round(math.log(self.d_, self.s_))

    def _build(self, gen, dtype):
        return HierarchicalCNN(self.v_, self.n_classes_, self.width, self.s_, self.L_, self.parametrization,
                               self.bias, gen, dtype, self.impl)

    def _layer_features(self, net, onehot):
        return net.features(onehot)
