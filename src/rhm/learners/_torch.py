"""The torch core the network learners share: :class:`TorchNetLearner`, the minibatch
training loop (one-hot per batch, SGD/Adam, cosine schedule, early stop, validation split, collapse check) of the
hierarchical CNN (``cnn.py``), the LCN, the transformer and the fully connected network (``shallow.py``), and
online training on an :class:`rhm.data.RHMStream` (``fit_stream``: one step per fresh batch, nothing stored).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from ..lm_tasks import MASKED_INPUT
from ..validation import check_bool, check_choice, check_float, check_int
from .base import Learner, check_seed, resolve_device, resolve_dtype

PARAMETRIZATIONS = ("mf", "standard")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "constant")
COLLAPSE_STEPS = 1000  # fewer SGD steps than this are too short a run to call a flat loss a collapse
_PREDICT_BATCH = 8192
#: with progress=True and stderr not a terminal (a log, CI), a plain progress line at least this often (seconds)
PROGRESS_INTERVAL_S = 15.0
#: the tasks scored by cross-entropy, whose fits select weights on validation cross-entropy
CE_TASKS = ("next-token", "next-token-all", "masked")
#: an LM fit's early stop waits at least this many optimiser steps without a better validation cross-entropy
LM_PATIENCE_MIN_STEPS = 500
#: the class-level options that a sweep's or the CLI's params may set on any torch learner (not constructor
#: arguments; rhm.experiments.tasks.make_learner sets them after construction)
FIT_OPTIONS = ("warmup", "val_patience", "lm_val_fraction", "lm_val_patience", "remask")


class TorchNetLearner(Learner):
    """Shared minibatch training of a torch network on one-hot-per-batch inputs (subclasses build the net).

    Subclass contract:

    * implement ``_build(generator, dtype)`` -> nn.Module taking ``_encode(tokens)`` (one-hot (B, v, d) unless
      ``_encode`` is overridden) and returning logits, and ``_layer_features(module, onehot)`` -> list of
      (B, features) tensors (the hidden layers);
    * take as constructor arguments (stored unchanged, sklearn style) the hyperparameters the loop reads:
      width, parametrization, optimizer, lr, momentum, weight_decay, batch_size, epochs, max_steps, schedule,
      loss_threshold, patience, val_fraction, bias, dtype, device, seed (a fixed value may be a class attribute
      instead, as the transformer's optimizer);
    * the optional ones below are class-level defaults here: a subclass that takes one as a constructor argument
      overrides it per instance, one that does not gets the default.
    """

    #: the class-level options below that a user may set by name (Learner.settable)
    FIT_OPTIONS = FIT_OPTIONS
    #: fraction of the scheduled steps with a linear learning-rate warmup
    warmup: float = 0.0
    #: stop after this many epochs without a better validation score (accuracy for classify, cross-entropy for the
    #: LM tasks; None = never for classify, lm_val_patience for the LM tasks; needs a validation split)
    val_patience: int | None = None
    #: report epochs and the training loss on stderr: a rich bar on a terminal, else a plain line at least every
    #: PROGRESS_INTERVAL_S seconds (off in the library so that sweep workers stay silent; ``rhm train`` turns it on)
    progress: bool = False
    #: run forward passes under bf16 autocast on CUDA
    autocast_cuda: bool = False
    #: cross-entropy tasks (next-token, next-token-all, masked): the fraction held out for validation when
    #: val_fraction is 0 (0 = no split). The weights with the lowest validation cross-entropy are kept and the fit
    #: stops after lm_val_patience epochs (at least LM_PATIENCE_MIN_STEPS steps) without a lower one, so that a
    #: small training set can never be memorised into a test cross-entropy above the unigram entropy
    lm_val_fraction: float = 0.1
    #: epochs without a lower validation cross-entropy before an LM fit stops (val_patience, when set, wins)
    lm_val_patience: int = 10
    #: masked task: draw a fresh mask for every batch from the clean training inputs (the same rate as the
    #: training targets', or one hidden token per row when every training row has exactly one), as Garnier-Brun
    #: et al. re-mask every batch; False trains on the fixed mask the data came with
    remask: bool = True

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
        check_float("warmup", self.warmup, 0.0, maximum=1.0)
        check_int("val_patience", self.val_patience, 1, none_ok=True)
        check_float("lm_val_fraction", self.lm_val_fraction, 0.0, maximum=0.5)
        check_int("lm_val_patience", self.lm_val_patience, 1)
        check_bool("remask", self.remask)
        check_bool("progress", self.progress)
        check_bool("bias", self.bias)
        check_seed(self.seed)
        resolve_dtype(self.dtype)
        resolve_device(self.device)

    # -- one-hot per batch ------------------------------------------------------------------------------
    def _onehot(self, xb):
        """(B, d) integer tokens on the device -> (B, v, d) one-hot in the model dtype (made per batch).

        Written channels-first and contiguous (what conv1d wants) with one scatter, no int64 one-hot temporary.
        """
        masked = self.task_ in MASKED_INPUT  # the MASK token (id v) becomes the zero vector
        out = torch.zeros(xb.shape[0], self.v_ + masked, xb.shape[1], dtype=self.dtype_, device=xb.device)
        out.scatter_(1, xb.long().unsqueeze(1), 1.0)
        return out[:, :self.v_].contiguous() if masked else out

    def _encode(self, xb):
        """What the network takes: one-hot (B, v, d) here; the transformer takes the token ids."""
        return self._onehot(xb)

    def _tokens(self, x):
        dt = torch.uint8 if self.v_ < 255 else torch.int32
        return torch.as_tensor(np.ascontiguousarray(x), dtype=dt).to(self.device_)

    def _fit(self, x, y):
        self._check_common()
        self._validate_shape()
        self.device_ = resolve_device(self.device)
        self.dtype_ = resolve_dtype(self.dtype)
        gen = torch.Generator().manual_seed(check_seed(self.seed))
        t_start = time.perf_counter()

        ce_task = self.task_ in CE_TASKS
        n = len(x)
        frac = self.val_fraction if self.val_fraction > 0 else (self.lm_val_fraction if ce_task else 0.0)
        n_val = int(round(frac * n)) if frac > 0 else 0
        if n_val and n - n_val < 1:
            raise ValueError(f"val_fraction={frac} leaves no training sample out of n={n}")
        if ce_task and self.val_fraction == 0 and (n_val < 1 or n - n_val < 1):
            n_val = 0  # too few samples to hold any out: the automatic LM split is skipped, not an error
        if n_val:
            perm = torch.randperm(n, generator=gen).numpy()
            x_val, y_val = x[perm[:n_val]], y[perm[:n_val]]
            x, y = x[perm[n_val:]], y[perm[n_val:]]
            n = len(x)

        net, opt = self._start(gen)
        autocast = self._autocast()

        xt, yt = self._tokens(x), torch.as_tensor(y.astype(np.int64)).to(self.device_)
        remask = self.task_ == "masked" and self.remask
        if remask:  # the clean inputs (hidden tokens put back) and the masking rule of the training targets
            xt = torch.where(yt >= 0, yt, xt.long()).to(xt.dtype)
            per_row = (y >= 0).sum(1)
            mask_one = bool(n > 1 and (per_row == 1).all())
            mask_rate = float((y >= 0).mean())
            if mask_rate == 0:
                raise ValueError("y: the masked training targets hide no token, so there is no rate to re-mask at")
        bs = min(self.batch_size, n)
        steps_per_epoch = math.ceil(n / bs)
        epochs = self.epochs
        if self.max_steps is not None:  # step budget: the schedule spans min(epochs, max_steps) worth of steps
            epochs = min(epochs, max(1, math.ceil(self.max_steps / steps_per_epoch)))
        total_steps = max(1, epochs * steps_per_epoch)
        base_lrs = [grp["lr"] for grp in opt.param_groups]
        warmup_steps = int(self.warmup * total_steps)
        val_patience = self.val_patience
        if val_patience is None and ce_task and n_val:
            val_patience = max(self.lm_val_patience, math.ceil(LM_PATIENCE_MIN_STEPS / steps_per_epoch))
        report = _Progress(self.name, "epoch", epochs, f"{n} samples, batch {bs}, up to {total_steps} steps"
                           + (f", {n_val} held out" if n_val else ""), self.progress)
        losses, val_hist = [], []
        best_val, best_state, best_epoch = (math.inf if ce_task else -1.0), None, 0
        below, step, epoch = 0, 0, 0
        stopped = "max_epochs"
        net.train()
        for epoch in range(1, epochs + 1):
            perm = torch.randperm(n, generator=gen).to(self.device_)
            total = torch.zeros((), dtype=torch.float64, device=self.device_)
            for i in range(steps_per_epoch):
                idx = perm[i * bs:(i + 1) * bs]
                xb, yb = xt[idx], yt[idx]
                if remask:
                    xb, yb = self._remask(xb, mask_one, mask_rate, gen)
                loss = self._step(net, opt, xb, yb, step, total_steps, warmup_steps, base_lrs, autocast)
                total.add_(loss.detach(), alpha=len(idx))
                step += 1
                report.tick(lambda: f"step {step}/{total_steps}, loss {float(total) / min(n, (i + 1) * bs):.4f}")
            epoch_loss = float(total) / n
            if not math.isfinite(epoch_loss):  # JSON-safe record: None marks a non-finite loss
                losses.append(None)
                stopped = "diverged"
                break
            losses.append(epoch_loss)
            if n_val:
                # classify: validation accuracy (higher is better); LM tasks: validation cross-entropy (lower)
                score = self._val_cross_entropy(x_val, y_val) if ce_task else self._val_accuracy(x_val, y_val)
                val_hist.append(score)
                if (score < best_val) if ce_task else (score > best_val):
                    best_val, best_state, best_epoch = score, copy.deepcopy(net.state_dict()), epoch
                net.train()
                report.advance(f"loss {epoch_loss:.4f}, val {'CE' if ce_task else 'acc'} {score:.4f}")
                if val_patience is not None and epoch - best_epoch >= val_patience:
                    stopped = "val_patience"
                    break
            else:
                report.advance(f"loss {epoch_loss:.4f}")
            below = below + 1 if epoch_loss < self.loss_threshold else 0
            if below >= self.patience:
                stopped = "loss_threshold"
                break
        report.close(f"{stopped} after {epoch if epochs else 0} epochs, {step} steps, loss "
                     f"{losses[-1] if losses and losses[-1] is not None else float('nan'):.4f}"
                     + (f"; kept epoch {best_epoch} (val {best_val:.4f})" if best_state is not None else ""))
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        # collapse: after a real training run (>= COLLAPSE_STEPS steps) the training loss of the kept network (the
        # last epoch's, or the best validation epoch's) is near that of predicting the label frequencies, i.e. the
        # network learnt nothing even on its training set (the CNN with weight decay at m = 8, L = 3 never leaves
        # it; without, at m = 4, L = 4 it falls, then returns to it)
        yy = y[y >= 0]
        freq = np.bincount(yy, minlength=self.n_classes_) / max(1, len(yy))
        chance = float(-(freq[freq > 0] * np.log(freq[freq > 0])).sum())
        kept = losses[best_epoch - 1] if best_state is not None else (losses[-1] if losses else None)
        # an LM task's chance is the unigram entropy, which the lower plateaus sit close to: no collapse check there
        collapsed = bool(not ce_task and step >= COLLAPSE_STEPS and kept is not None and chance > 0
                         and kept >= 0.9 * chance)
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
        if self.task_ == "masked":
            self.info_["remask"] = ("one per row" if mask_one else f"rate {mask_rate:.4f}") if remask else False
        if n_val and ce_task:
            self.info_.update({"val_cross_entropy_history": val_hist, "best_val_cross_entropy": best_val,
                               "selected_on": "val_cross_entropy", "best_epoch": best_epoch,
                               "best_step": best_epoch * steps_per_epoch, "kept_train_loss": kept})
        elif n_val:
            self.info_.update({"val_accuracy_history": val_hist, "best_val_accuracy": best_val,
                               "selected_on": "val_accuracy", "best_epoch": best_epoch,
                               "best_step": best_epoch * steps_per_epoch})

    def _remask(self, xb, one: bool, rate: float, gen):
        """A fresh mask on clean token batch xb (B, d): -> (inputs with MASK, targets with IGNORE elsewhere).

        one=True hides exactly one uniformly drawn position per row; else each position independently with
        probability `rate` (a batch that draws no hidden token gets one, so that its loss is defined)."""
        B, d = xb.shape
        if one:
            mask = torch.zeros(B, d, dtype=torch.bool)
            mask[torch.arange(B), torch.randint(0, d, (B,), generator=gen)] = True
        else:
            mask = torch.rand(B, d, generator=gen) < rate
            if not mask.any():
                mask[0, int(torch.randint(0, d, (1,), generator=gen))] = True
        mask = mask.to(xb.device)
        x_in = torch.where(mask, torch.full_like(xb, self.v_), xb)
        return x_in, torch.where(mask, xb.long(), torch.full_like(xb, -1, dtype=torch.long))

    @torch.no_grad()
    def _val_accuracy(self, x_val, y_val) -> float:
        keep = y_val >= 0
        return float((self._predict_tokens(x_val)[keep] == y_val[keep]).mean())

    @torch.no_grad()
    def _val_cross_entropy(self, x_val, y_val) -> float:
        """Mean cross-entropy (nats) over the target positions of the held-out set (targets >= 0)."""
        self.net_.eval()
        total, count = 0.0, 0
        for i in range(0, len(x_val), _PREDICT_BATCH):
            logits = self.net_(self._encode(self._tokens(x_val[i:i + _PREDICT_BATCH]))).float()
            yb = torch.as_tensor(y_val[i:i + _PREDICT_BATCH].astype(np.int64)).to(self.device_)
            total += float(F.cross_entropy(logits, yb, ignore_index=-1, reduction="sum"))
            count += int((yb >= 0).sum())
        return total / count if count else math.inf

    def _check_network_size(self):
        """Refuse a network that cannot fit before allocating it (a huge ``width`` failed only after a minute):
        build it on the meta device, which allocates nothing, count its parameters and check weights, gradients
        and two optimiser moments (4 copies) against the memory available (the GPU's free memory on CUDA)."""
        from .. import limits

        with torch.device("meta"):  # a throwaway generator: the real one's stream is left as it was
            net = self._build(torch.Generator().manual_seed(0), self.dtype_)
        n = sum(p.numel() for p in net.parameters())
        itemsize = torch.empty((), dtype=self.dtype_, device="meta").element_size()
        limit = None
        if self.device_.type == "cuda":
            limit = torch.cuda.mem_get_info(self.device_)[0]
        limits.check_bytes("width", f"a {type(self).__name__} of {n:,} parameters (weights, gradients, optimiser "
                                    "state)", 4.0 * n * itemsize, limit=limit)

    def _start(self, gen):
        """Build the network (seeded by `gen`) on the device and its optimiser; -> (net, opt)."""
        self._check_network_size()
        self.net_ = self._build(gen, self.dtype_).to(self.device_)
        # mean-field: SGD's lr is scaled by h (the readout's 1/h shrinks every gradient by h); Adam normalises
        # gradients, so its lr is used as given
        mf_sgd = self.parametrization == "mf" and self.optimizer == "sgd"
        lr = self.lr * (self.width if mf_sgd else 1.0)
        params = list(self.net_.parameters())
        if self.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=lr, momentum=self.momentum, weight_decay=self.weight_decay)
        elif self.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=lr, weight_decay=self.weight_decay)
        else:
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=self.weight_decay)
        return self.net_, opt

    def _autocast(self) -> bool:
        return self.device_.type == "cuda" and self.autocast_cuda

    def _step(self, net, opt, xb, yb, step, total_steps, warmup_steps, base_lrs, autocast):
        """One optimiser step on token batch xb (B, d) with targets yb: linear warmup, then the schedule over the
        remaining steps; returns the (detached) batch loss."""
        f = 1.0
        if step < warmup_steps:
            f = (step + 1) / warmup_steps
        elif self.schedule == "cosine":
            f = 0.5 * (1.0 + math.cos(math.pi * (step - warmup_steps) / max(1, total_steps - warmup_steps)))
        if warmup_steps or self.schedule == "cosine":
            for grp, b in zip(opt.param_groups, base_lrs):
                grp["lr"] = b * f
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            logits = net(self._encode(xb))
        loss = F.cross_entropy(logits.float() if autocast else logits, yb, ignore_index=-1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    # -- online training ---------------------------------------------------------------------------------
    def fit_stream(self, stream, max_steps: int | None = None, log_every: int = 100):
        """Train online on a :class:`rhm.data.RHMStream`: one optimiser step per fresh batch, nothing stored.

        The task, the grammar and the batch size are the stream's (its targets are built per batch by
        :mod:`rhm.lm_tasks`); the number of steps is `max_steps`, else the stream's ``n_batches``, else the
        learner's ``max_steps``. The schedule (warmup, cosine) spans those steps; ``epochs``, the validation
        split and the loss-threshold stop do not apply. ``info_["train_loss_history"]`` holds the mean loss of
        every `log_every` steps; ``info_["samples_seen"]`` = steps x batch size; for the masked task
        ``info_["stream_mask_rate"]`` is the rate of the training masks and ``info_["stream_mask_draws"]`` the masks
        drawn per string.
        """
        from ..data import RHMStream

        if not isinstance(stream, RHMStream):
            raise ValueError(f"stream must be an rhm.data.RHMStream, got {type(stream).__name__}")
        check_int("max_steps", max_steps, 1, none_ok=True)
        check_int("log_every", log_every, 1)
        total_steps = next((k for k in (max_steps, stream.n_batches, self.max_steps) if k is not None), None)
        if not total_steps:
            raise ValueError("fit_stream needs a number of steps: max_steps, a stream with n_batches >= 1, or "
                             "the learner's max_steps")
        self._setup(stream.g, stream.task)
        self._check_common()
        self._validate_shape()
        self.device_, self.dtype_ = resolve_device(self.device), resolve_dtype(self.dtype)
        with self._seeded():
            self._fit_stream(stream, total_steps, log_every)
        return self

    def _seeded(self):
        """Context in which the fit runs (the transformer seeds torch's global generator for dropout)."""
        return contextlib.nullcontext()

    def _fit_stream(self, stream, total_steps, log_every):
        t_start = time.perf_counter()
        net, opt = self._start(torch.Generator().manual_seed(check_seed(self.seed)))
        autocast = self._autocast()
        base_lrs = [grp["lr"] for grp in opt.param_groups]
        warmup_steps = int(self.warmup * total_steps)
        report = _Progress(self.name, "step", total_steps, f"online, batch {stream.batch_size}", self.progress)
        losses, window, step = [], torch.zeros((), dtype=torch.float64, device=self.device_), 0
        stopped = "max_steps"
        net.train()
        for batch in itertools.islice(stream.task_batches(), total_steps):  # exactly total_steps batches drawn
            xb = self._tokens(batch.x)  # the same token encoding as fit's
            yb = torch.as_tensor(batch.y.astype(np.int64)).to(self.device_)
            window.add_(self._step(net, opt, xb, yb, step, total_steps, warmup_steps, base_lrs, autocast))
            step += 1
            report.advance("", every_step=True)
            if step % log_every == 0 or step == total_steps:
                mean = float(window) / (log_every if step % log_every == 0 else step % log_every)
                losses.append(mean if math.isfinite(mean) else None)
                window.zero_()
                report.note(f"loss {mean:.4f}")
                if not math.isfinite(mean):
                    stopped = "diverged"
                    break
        if step < total_steps and stopped == "max_steps":
            stopped = "stream_exhausted"
        report.close(f"{stopped} after {step} steps, loss "
                     f"{losses[-1] if losses and losses[-1] is not None else float('nan'):.4f}")
        net.eval()
        self.info_.update({"steps": step, "stopped": stopped, "samples_seen": step * stream.batch_size,
                           "final_train_loss": losses[-1] if losses else None, "train_loss_history": losses,
                           "online": True, "fit_seconds": time.perf_counter() - t_start,
                           "device": str(self.device_)})
        if stream.task == "masked":  # the rate (or "one") the stream's training masks were drawn at
            self.info_["stream_mask_rate"] = stream.mask_rate
            self.info_["stream_mask_draws"] = stream.mask_draws

    def _validate_shape(self):
        pass

    # -- inference -------------------------------------------------------------------------------------
    @torch.no_grad()
    def _predict_tokens(self, x):
        self.net_.eval()
        out = []
        for i in range(0, len(x), _PREDICT_BATCH):
            xb = self._tokens(x[i:i + _PREDICT_BATCH])
            out.append(self.net_(self._encode(xb)).argmax(1).cpu())
        return torch.cat(out).numpy()

    def _predict(self, x):
        return self._predict_tokens(x)

    @torch.no_grad()
    def decision_function(self, x) -> np.ndarray:
        """Logits (n, n_classes) as float64."""
        x = self._check_xy(x, fitting=False)
        self.net_.eval()
        out = [self.net_(self._encode(self._tokens(x[i:i + _PREDICT_BATCH]))).double().cpu()
               for i in range(0, len(x), _PREDICT_BATCH)]
        return torch.cat(out).numpy()

    def predict_proba(self, x) -> np.ndarray:
        """Predictive probabilities (float64): (n, n_classes), or (n, d, v) for the per-position tasks."""
        logits = torch.from_numpy(self.decision_function(x))
        p = torch.softmax(logits, dim=1)
        return (p.transpose(1, 2) if p.ndim == 3 else p).numpy()

    @torch.no_grad()
    def hidden(self, x) -> list[np.ndarray]:
        """Post-ReLU activations of the hidden layers, bottom first: [(n, features_k) for k = 1..K] (float64).

        This is the protocol :func:`rhm.sensitivity` uses (f_k of Cagnetta et al.'s synonymic sensitivity).
        """
        x = self._check_xy(x, fitting=False)
        self.net_.eval()
        parts = None
        for i in range(0, len(x), _PREDICT_BATCH):
            feats = self._layer_features(self.net_, self._encode(self._tokens(x[i:i + _PREDICT_BATCH])))
            feats = [f.flatten(1).double().cpu() for f in feats]
            parts = [[f] for f in feats] if parts is None else [p + [f] for p, f in zip(parts, feats)]
        return [torch.cat(p).numpy() for p in parts]


class _Progress:
    """Progress of one fit on stderr (nothing when disabled): a transient rich bar over `total` units (epochs or
    steps) when stderr is a terminal, else plain lines (one at the start, one at least every
    PROGRESS_INTERVAL_S seconds, one at the end) that a log file or CI shows as they come."""

    def __init__(self, name: str, unit: str, total: int, what: str, enabled: bool):
        self.name, self.unit, self.total, self.enabled = name, unit, max(1, total), enabled
        self.done, self.status, self.bar = 0, "", None
        if not enabled:
            return
        self.t0 = self.last = time.perf_counter()
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn(f"{unit}s"), TimeElapsedColumn(), console=Console(file=sys.stderr),
                                transient=True)
            self.bar.start()
            self.task = self.bar.add_task(name, total=self.total)
        else:
            self._line(f"training: {what}")

    def _line(self, text: str):
        print(f"{self.name} [{time.perf_counter() - self.t0:.0f} s] {text}", file=sys.stderr, flush=True)
        self.last = time.perf_counter()

    def tick(self, detail):
        """Within a unit (e.g. every step of an epoch): a plain line if PROGRESS_INTERVAL_S has passed since the
        last one; `detail` is a callable so that nothing is computed otherwise."""
        if self.enabled and self.bar is None and time.perf_counter() - self.last >= PROGRESS_INTERVAL_S:
            self._line(f"{self.unit} {self.done + 1}/{self.total}: {detail()}")

    def note(self, status: str):
        self.status = status

    def advance(self, status: str, every_step: bool = False):
        """One unit done; `status` (e.g. the epoch's loss) goes on the bar or on the next plain line."""
        if not self.enabled:
            return
        self.done += 1
        if status:
            self.status = status
        if self.bar is not None:
            if not every_step or self.done % 50 == 0 or self.done == self.total:  # a redraw is not free
                self.bar.update(self.task, completed=self.done, description=f"{self.name} {self.status}")
        elif time.perf_counter() - self.last >= PROGRESS_INTERVAL_S:
            self._line(f"{self.unit} {self.done}/{self.total}, {self.status}")

    def close(self, summary: str):
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.stop()
        self._line(summary)
