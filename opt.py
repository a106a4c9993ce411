"""Adam with the "weight decay fix", as in OpenAI's finetune-transformer-lm (GPT-1).

The TensorFlow release (openai/finetune-transformer-lm, ``opt.py``) is the reference for
the arithmetic; the earlier PyTorch port (huggingface/pytorch-openai-transformer-lm) is
the reference for the names. Where the two differ this module follows TensorFlow:

* gradients are clipped by their *global* norm over all parameters (the earlier port
  clipped every parameter on its own);
* the schedule is evaluated at ``(t - 1) / t_total`` (TF read its step counter before
  incrementing it), so the first step has ``schedule(0) == 0`` for all three schedules
  and moves no parameter (``m`` and ``v`` are still updated); the earlier port used
  ``t / t_total``;
* the decay term is inside the bias-corrected, scheduled step ``lr_t`` and uses the
  parameter's value before the step (the earlier port applied ``lr * schedule * l2 * p``
  after the Adam update, from the updated value, without the bias correction).

`AdamConfig` holds the optimizer's settings under their flags' names and builds it:
``AdamConfig(lr=6.25e-5).build(model.parameters(), t_total)``.
"""
import math
import numbers
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
from torch.optim import Optimizer

from errors import ConfigError, InputError
from flags import Config

__all__ = ['AdamConfig', 'OpenAIAdam', 'SCHEDULES', 'warmup_cosine', 'warmup_constant', 'warmup_linear',
           'constant']


def _warmup_indicator(x, warmup):
    """s = 1 where x <= warmup else 0, as a float of x's kind (number, ndarray or tensor)."""
    if isinstance(x, torch.Tensor):
        dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
        return (x <= warmup).to(dtype)
    if isinstance(x, (np.ndarray, np.generic)):
        return (np.asarray(x) <= warmup).astype(np.result_type(x, np.float32))
    return 1.0 if x <= warmup else 0.0


def _cos(x):
    if isinstance(x, torch.Tensor):
        return torch.cos(x)
    if isinstance(x, (np.ndarray, np.generic)):
        return np.cos(x)
    return math.cos(x)


def warmup_cosine(x, warmup=0.002):
    """Linear warm-up to 1 over ``x <= warmup``, then ``0.5 * (1 + cos(pi * x))``."""
    s = _warmup_indicator(x, warmup)
    return s * (x / warmup) + (1 - s) * (0.5 * (1 + _cos(math.pi * x)))


def warmup_constant(x, warmup=0.002):
    """Linear warm-up to 1 over ``x <= warmup``, then 1."""
    s = _warmup_indicator(x, warmup)
    return s * (x / warmup) + (1 - s) * 1


def warmup_linear(x, warmup=0.002):
    """Linear warm-up over ``x <= warmup``, the whole multiplied by ``1 - x``."""
    s = _warmup_indicator(x, warmup)
    return (s * (x / warmup) + (1 - s)) * (1 - x)


def constant(x, warmup=0.002):
    """No schedule: 1 everywhere (the optimizer's ``schedule='none'``)."""
    return 1.0


SCHEDULES = {
    'warmup_cosine': warmup_cosine,
    'warmup_constant': warmup_constant,
    'warmup_linear': warmup_linear,
    'none': constant,
}


def _real_in(value, ok):
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and ok(float(value))


def _first_problem(h):
    """(name, expected) for the first setting in OpenAIAdam's dict of settings `h` that cannot
    work, else None."""
    if not _real_in(h['lr'], lambda v: 0.0 < v < math.inf):
        return 'lr', "a finite number > 0"
    if not isinstance(h['schedule'], str) or h['schedule'] not in SCHEDULES:
        return 'schedule', f"one of {', '.join(map(repr, SCHEDULES))}"
    # x / warmup: 0 would divide by zero on the first step; 'none' never reads it
    if h['schedule'] != 'none' and not _real_in(h['warmup'], lambda v: 0.0 < v <= 1.0):
        return 'warmup', f"a fraction of t_total in (0, 1] for schedule {h['schedule']!r}"
    if not _real_in(h['t_total'], lambda v: 1.0 <= v < math.inf):
        return 't_total', "a finite number of steps >= 1"
    for name in ('b1', 'b2'):
        if not _real_in(h[name], lambda v: 0.0 <= v < 1.0):
            return name, "a number in [0, 1)"
    for name in ('e', 'l2'):
        if not _real_in(h[name], lambda v: 0.0 <= v < math.inf):
            return name, "a finite number >= 0"
    if not isinstance(h['vector_l2'], (bool, np.bool_)):
        return 'vector_l2', "a bool"
    # an infinite bound would scale every gradient by inf * 0 = NaN
    if not _real_in(h['max_grad_norm'], math.isfinite):
        return 'max_grad_norm', "a finite number (<= 0 turns clipping off)"
    return None


def check_hyperparameters(h):
    """Raise a one-line InputError naming the first bad setting in OpenAIAdam's dict of settings
    ``h``, its value and the range it must lie in."""
    problem = _first_problem(h)
    if problem is not None:
        name, expected = problem
        raise InputError(f"OpenAIAdam: invalid {name} {h[name]!r}: expected {expected}")


@dataclass
class AdamConfig(Config):
    """OpenAIAdam's settings, named as their flags (the paper's finetuning values by default);
    `build(params, t_total)` makes the optimizer. OpenAIAdam's own arguments are `schedule` for
    lr_schedule and `warmup` for lr_warmup."""

    lr: float = field(default=6.25e-5, metadata={'help': "peak learning rate"})
    lr_schedule: str = field(default='warmup_linear', metadata={
        'choices': tuple(SCHEDULES), 'help': "learning-rate schedule over the run's updates"})
    lr_warmup: float = field(default=0.002, metadata={
        'help': "share of the run's updates spent warming the learning rate up, in (0, 1]"})
    b1: float = field(default=0.9, metadata={'help': "Adam's decay rate of the gradients' mean"})
    b2: float = field(default=0.999, metadata={'help': "Adam's decay rate of the squared gradients' mean"})
    e: float = field(default=1e-8, metadata={'help': "Adam's epsilon"})
    l2: float = field(default=0.01, metadata={'help': "decoupled weight decay of the matrices"})
    vector_l2: bool = field(default=False, metadata={'help': "decay the biases and gains too"})
    # 1, not 1.0: the value the runs' files record for this flag's default
    max_grad_norm: float = field(default=1, metadata={
        'help': "clip the gradients to this global norm (<= 0: no clipping)"})

    def optimizer_kwargs(self, t_total):
        """OpenAIAdam's keyword arguments for a run of `t_total` updates."""
        return dict(lr=self.lr, schedule=self.lr_schedule, warmup=self.lr_warmup, t_total=t_total, b1=self.b1,
                    b2=self.b2, e=self.e, l2=self.l2, vector_l2=self.vector_l2, max_grad_norm=self.max_grad_norm)

    def check(self):
        settings = self.optimizer_kwargs(t_total=1)
        problem = _first_problem(settings)
        if problem is not None:
            name, expected = problem
            field_name = {'schedule': 'lr_schedule', 'warmup': 'lr_warmup'}.get(name, name)
            raise ConfigError(field_name, settings[name], expected)

    def build(self, params, t_total):
        """OpenAIAdam over `params` (parameters or groups) for `t_total` updates."""
        return OpenAIAdam(params, **self.optimizer_kwargs(t_total))


def _norms(grads, dtype):
    """The 2-norm of each gradient, accumulated in ``dtype``."""
    try:
        return list(torch._foreach_norm(grads, 2, dtype=dtype))
    except TypeError:  # torch before the dtype argument of _foreach_norm
        return [torch.linalg.vector_norm(g, 2, dtype=dtype) for g in grads]


class OpenAIAdam(Optimizer):
    r"""Adam with decoupled L2 decay, global-norm clipping and a learning-rate schedule,
    with the arithmetic of OpenAI's TensorFlow ``adam`` (finetune-transformer-lm).

    Each call of :meth:`step`:

    1. If ``max_grad_norm > 0``, every gradient is scaled by one common factor
       (``tf.clip_by_global_norm``)::

           N = sqrt(sum over all parameters of all groups of sum(g ** 2))
           c = max_grad_norm * min(1 / N, 1 / max_grad_norm)     # = max_grad_norm / max(N, max_grad_norm)
           g = c * g                                            # c is NaN when N is inf or NaN

       The clipped gradient is what Adam sees; ``p.grad`` itself is left untouched.

    2. For every parameter with a gradient, with ``t`` its step number (1 on its first
       step) and the settings of its group::

           lr_t = lr * sqrt(1 - b2 ** t) / (1 - b1 ** t) * schedule(min((t - 1) / t_total, 1), warmup)
           m    = b1 * m + (1 - b1) * g
           v    = b2 * v + (1 - b2) * g * g
           p    = p - lr_t * (m / (sqrt(v) + e) + l2 * p)

       where the ``l2 * p`` term is present only if ``l2 > 0`` and the parameter has more
       than one dimension (or for every parameter when ``vector_l2``), and ``p`` on the
       right-hand side is the value before this step. ``m`` and ``v`` start at zero.

    Notes:
        * ``schedule(0) == 0`` for all three warm-up schedules, so (exactly as in the
          TensorFlow release) the first step leaves the parameters unchanged and only
          fills ``m`` and ``v``.
        * TensorFlow never went past ``t = t_total`` (its ``t_total`` is the exact number of
          updates). Past that point this class holds the schedule's progress at 1 (so
          ``warmup_linear`` gives 0 rather than a negative rate, i.e. gradient ascent) and
          warns once.
        * ``t`` is counted per parameter (stored in its state as ``'step'``), as
          ``torch.optim.Adam`` does; when every parameter gets a gradient on every step,
          as in the TensorFlow training loop, it is the global step count.
        * Parameters whose ``grad`` is None are skipped: no clipping contribution, no
          moment update, no step count, no decay.
        * ``max_grad_norm`` applies to all parameter groups together, so a group cannot
          set its own.

    Args:
        params: parameters or parameter-group dicts; a group may override ``lr``,
            ``schedule``, ``warmup``, ``t_total``, ``b1``, ``b2``, ``e``, ``l2`` and
            ``vector_l2``.
        lr: base learning rate (finite, > 0).
        schedule: one of ``'warmup_cosine'``, ``'warmup_constant'``, ``'warmup_linear'``,
            ``'none'``.
        warmup: fraction of ``t_total`` spent warming up, in (0, 1]; not read by ``'none'``.
        t_total: total number of steps (finite, >= 1).
        b1, b2: Adam decay rates, in [0, 1).
        e: Adam epsilon, added to ``sqrt(v)`` (finite, >= 0).
        l2: decoupled weight-decay coefficient (finite, >= 0).
        vector_l2: also decay parameters with fewer than two dimensions.
        max_grad_norm: global gradient-norm bound (finite); <= 0 turns clipping off.

    A setting outside these ranges raises ``errors.InputError`` (a ValueError) naming it,
    its value and the range, at construction or in ``add_param_group``.
    """

    def __init__(self, params, lr, schedule, warmup, t_total, b1=0.9, b2=0.999, e=1e-8, l2=0,
                 vector_l2=False, max_grad_norm=-1):
        defaults = dict(lr=lr, schedule=schedule, warmup=warmup, t_total=t_total, b1=b1, b2=b2,
                        e=e, l2=l2, vector_l2=vector_l2, max_grad_norm=max_grad_norm)
        check_hyperparameters(defaults)
        self._warned_past_t_total = False
        super().__init__(params, defaults)

    def add_param_group(self, param_group):
        # Clipping is one operation over every group, so its bound must be shared.
        if not isinstance(param_group, dict):
            raise TypeError(f"OpenAIAdam: a parameter group must be a dict, got "
                            f"{type(param_group).__name__}")
        shared = (self.param_groups[0]['max_grad_norm'] if self.param_groups
                  else self.defaults['max_grad_norm'])
        param_group.setdefault('max_grad_norm', shared)
        if param_group['max_grad_norm'] != shared:
            raise InputError(f"OpenAIAdam: invalid max_grad_norm {param_group['max_grad_norm']!r} "
                             f"in a parameter group: expected {shared!r}, as clipping is global to all groups")
        check_hyperparameters({**self.defaults, **param_group})
        super().add_param_group(param_group)

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.setdefault('_warned_past_t_total', False)

    # The steps of one update, in the order of the docstring's formula.

    def _params_with_grads(self):
        """[(group, [parameters of the group that have a dense gradient])], groups without any left out."""
        work = []
        for group in self.param_groups:
            params = [p for p in group['params'] if p.grad is not None]
            for p in params:
                if p.grad.is_sparse:
                    raise RuntimeError("OpenAIAdam does not support sparse gradients (the "
                                       "TensorFlow release densified them; use a dense "
                                       "embedding, e.g. nn.Embedding(sparse=False))")
            if params:
                work.append((group, params))
        return work

    def _global_clip_scales(self, grads):
        """c = max_grad_norm / max(N, max_grad_norm) with N the norm of all `grads` together,
        as a 0-d tensor per device; None when not clipping."""
        max_norm = float(self.param_groups[0]['max_grad_norm'])
        if not max_norm > 0:
            return None
        acc = torch.float64 if any(g.dtype == torch.float64 for g in grads) else torch.float32
        by_kind = defaultdict(list)
        for g in grads:
            by_kind[(g.device, g.dtype)].append(g)
        home = grads[0].device
        norms = [n.to(home) for gs in by_kind.values() for n in _norms(gs, acc)]
        total = torch.linalg.vector_norm(torch.stack(norms), 2)
        # tf.clip_by_global_norm's own expression, including its NaN for an inf/NaN norm
        # (total - total is 0 when finite and NaN otherwise).
        scale = max_norm * torch.minimum(1.0 / total, total.new_tensor(1.0 / max_norm))
        scale = scale + (total - total)
        return {dev: scale.to(dev) for dev in {g.device for g in grads}}

    def _buckets(self, group, params):
        """Count each parameter's step t and group the parameters into {(device, dtype, t):
        _Bucket}: foreach kernels want one device and dtype per call, and lr_t depends on t."""
        decay_all = bool(group['vector_l2'])
        buckets = defaultdict(lambda: _Bucket([], [], [], [], []))
        for p in params:
            state = self.state[p]
            if not state:
                state['step'] = 0
                state['exp_avg'] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state['exp_avg_sq'] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state['step'] += 1
            b = buckets[(p.device, p.dtype, state['step'])]
            b.params.append(p)
            b.grads.append(p.grad)
            b.m.append(state['exp_avg'])
            b.v.append(state['exp_avg_sq'])
            if group['l2'] > 0 and (p.dim() > 1 or decay_all):
                b.decayed.append(p)
        return buckets

    def _lr_t(self, group, t):
        """lr * sqrt(1 - b2^t) / (1 - b1^t) * schedule(min((t - 1) / t_total, 1), warmup)."""
        progress = (t - 1) / group['t_total']
        if progress >= 1 and not self._warned_past_t_total:
            self._warned_past_t_total = True
            warnings.warn(f"OpenAIAdam: step {t} is past t_total={group['t_total']}; the "
                          "schedule is held at its value for progress 1", RuntimeWarning,
                          stacklevel=5)  # _lr_t, step, torch's two wrappers of step, the caller
        schedule = SCHEDULES[group['schedule']]
        b1, b2 = group['b1'], group['b2']
        return group['lr'] * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * schedule(min(progress, 1.0), group['warmup'])

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one update; ``closure`` (optional) re-evaluates the model and returns
        the loss, which is returned."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work = self._params_with_grads()
        if not work:
            return loss
        scales = self._global_clip_scales([p.grad for _, params in work for p in params])
        for group, params in work:
            for (device, _, t), b in self._buckets(group, params).items():
                # CPU: fresh buffers cost their first touch, so one scratch buffer is reused;
                # CUDA: the caching allocator makes buffers free and launches are what count.
                scale, lr_t = None if scales is None else scales[device], self._lr_t(group, t)
                if device.type == 'cpu':
                    _adam_update_loop(b, scale, group['b1'], group['b2'], lr_t, group['l2'], group['e'],
                                      self._scratch(b.params))
                else:
                    _adam_update_foreach(b, scale, group['b1'], group['b2'], lr_t, group['l2'], group['e'])
        return loss

    def _scratch(self, params):
        """A flat buffer of params' device and dtype, as large as the largest of them, kept
        between steps (outside the state_dict): a fresh one each step would pay its page
        faults again, as long as the update itself on CPU."""
        n, p = max(p.numel() for p in params), params[0]
        buffers = self.__dict__.setdefault('_scratch_buffers', {})
        buf = buffers.get((p.device, p.dtype))
        if buf is None or buf.numel() < n:
            buf = buffers[(p.device, p.dtype)] = torch.empty(n, dtype=p.dtype, device=p.device)
        return buf


class _Bucket(NamedTuple):
    """Parameters of one (device, dtype, step) with their gradients, moments, and the
    subset that takes the l2 decay."""
    params: list
    grads: list
    m: list
    v: list
    decayed: list


def _adam_update_foreach(b, scale, b1, b2, lr_t, l2, e):
    """In place, for each parameter p of the bucket b with gradient g, clipped as g * scale
    (scale None: not clipped; p.grad itself is left alone):
    m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= lr_t * (m / (sqrt(v) + e) + l2 * p),
    the l2 term for b.decayed only, read from p before the Adam step, as TF computed both
    from the old value: p - lr_t*l2*p, then - lr_t*m/(sqrt(v)+e). A few foreach kernels
    for the whole bucket."""
    grads = b.grads if scale is None else torch._foreach_mul(b.grads, scale)
    torch._foreach_mul_(b.m, b1)
    torch._foreach_add_(b.m, grads, alpha=1 - b1)
    torch._foreach_mul_(b.v, b2)
    torch._foreach_addcmul_(b.v, grads, grads, value=1 - b2)
    del grads
    if b.decayed:
        torch._foreach_add_(b.decayed, b.decayed, alpha=-lr_t * l2)
    denom = torch._foreach_sqrt(b.v)
    torch._foreach_add_(denom, e)
    torch._foreach_addcdiv_(b.params, b.m, denom, value=-lr_t)


def _adam_update_loop(b, scale, b1, b2, lr_t, l2, e, scratch):
    """_adam_update_foreach's update, bit for bit, one parameter at a time with `scratch`
    (a flat buffer at least as large as the largest parameter) for its clipped gradient
    and then its denominator: on CPU a clipped copy of every gradient and a denominator
    for every parameter would be two fresh model-sized buffers a step, whose first touch
    costs as much as the arithmetic."""
    decayed = {id(p) for p in b.decayed}
    for p, g, m, v in zip(b.params, b.grads, b.m, b.v):
        buf = scratch[:p.numel()].view(p.shape)
        if scale is not None:
            g = torch.mul(g, scale, out=buf)
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        if id(p) in decayed:
            p.add_(p, alpha=-lr_t * l2)
        p.addcdiv_(m, torch.sqrt(v, out=buf).add_(e), value=-lr_t)
