"""Finetuning losses: the task loss plus `lm_coef` times the language-model loss.

The objective is the TF release's:

    train_loss = mean(clf_losses) + lm_coef * mean(lm_losses)

where `clf_losses` has one entry per example and `lm_losses` one per sequence
(an example of the multiple-choice task holds `n_choices` sequences), each
sequence's LM loss being the mean of its next-token losses over its real
tokens (mask `M`, positions 1..n-1).

Where the work happens (one place, so that gradient accumulation is simple):

* `losses(...)` and `loss(...)` are pure: they return per-item losses or the
  scalar objective and touch no gradient.
* `__call__(...)`, the earlier port's call shape, is one training micro-step
  (`train_on(objective)` for an objective computed elsewhere, as `objective(...)`
  does from a mean LM loss that prefix.py's shared-prefix step computes):
  it computes the objective, back-propagates `loss / n_acc` (through the AMP
  GradScaler when one is given), and every `n_acc`-th call steps the optimizer
  and zeroes the gradients. It returns the objective as a float, and raises
  NonFiniteLossError before the backward pass when the objective is NaN or inf.
  With `only_return_losses=True` it only returns the per-item losses.
* `step()` applies a pending partial accumulation (fewer than `n_acc` calls).

LM logits come in two layouts:

* dense (the earlier port's): `lm_logits` is `(n_seq * (T - 1), vocab)` for
  positions 0..T-2 of every sequence;
* sparse: the model was called with `lm_mask` (see `lm_mask_from`), so
  `lm_logits` holds only the rows where a next token is real, in row-major
  order; pass the same `lm_mask` here.
Both give the same losses.
"""
import math

import torch
import torch.nn.functional as F

from errors import NonFiniteLossError
from run_frame import GradientAccumulator

IGNORE_INDEX = -100


def chunk_rows(n_vocab):
    """Rows of logits chunked_lm_loss computes at a time: about 32M logits (128 MB in
    float32), in a multiple of 256 rows. Each chunk streams the whole embedding matrix
    through three matmuls, so a chunk must be large; on 2 EPYC cores 512 to 1024 rows of
    the 40k vocabulary ran fastest (768 at 40k), 100 to 200 rows (a cache-sized chunk)
    no faster than the dense loss, and a row count off the multiple of 256 (826) 10%
    slower."""
    rows = (1 << 25) // n_vocab
    return max(256, rows - rows % 256)


def _upcast(logits):
    """logits in float32, or float64 if they are."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


class ChunkBuffer:
    """The chunk buffer that chunked_lm_loss reuses from call to call on the CPU, where a
    fresh 128 MB buffer each step costs its page faults (2 to 4% of a pre-training update
    on 2 EPYC cores); CUDA's caching allocator reuses freed memory already. LMModel keeps
    one. Pickling or deep-copying it drops the tensor. One loss at a time: two threads
    computing losses through the same buffer would overwrite each other's logits."""

    def __init__(self):
        self.tensor = None

    def get(self, numel, dtype, device):
        """A flat tensor of at least `numel` elements of dtype on device."""
        t = self.tensor
        if t is None or t.numel() < numel or t.dtype != dtype or t.device != device:
            self.tensor = None  # freed before the larger one is allocated
            t = self.tensor = torch.empty(numel, dtype=dtype, device=device)
        return t

    def __getstate__(self):
        return {'tensor': None}


class _ChunkedLMLoss(torch.autograd.Function):
    """The summed cross entropy of h @ we.T against targets, and, when a gradient is
    needed, its gradients with respect to h and we, computed chunk by chunk in the
    forward pass; backward only scales them. See chunked_lm_loss.

    A chunk's logits are held vocabulary-major, (vocab, rows) = we @ h_chunk.T: MKL
    computes that product about 1.5x as fast as the (rows, vocab) one on 2 EPYC cores,
    and the gradients' two products as fast from either layout (we @ h.T at 150 to 160
    GFLOP/s against 95 to 110 for h @ we.T, float32)."""

    @staticmethod
    def forward(ctx, h, we, targets, rows, buffer):
        device = h.device.type
        autocast = torch.is_autocast_enabled(device)
        dtype = torch.get_autocast_dtype(device) if autocast else h.dtype
        acc = torch.promote_types(dtype, torch.float32)  # the softmax's dtype: float32 at least
        need_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        with torch.autocast(device, enabled=False):
            hd, wd = h.to(dtype), we.to(dtype)
            valid = targets != IGNORE_INDEX
            picks = targets.clamp_min(0)
            total = torch.zeros((), dtype=acc, device=h.device)
            dh = torch.empty_like(hd) if need_grad else None
            dwe = None
            # one buffer for every chunk: a fresh one each time costs its page faults again
            n_buf = we.size(0) * min(rows, h.size(0))
            buf = (buffer.get(n_buf, acc, h.device)[:n_buf] if buffer is not None and h.device.type == 'cpu'
                   else torch.empty(n_buf, dtype=acc, device=h.device))
            for s in range(0, h.size(0), rows):
                hc, keep, pick = hd[s:s + rows], valid[s:s + rows], picks[s:s + rows]
                n, cols = hc.size(0), torch.arange(hc.size(0), device=h.device)
                logits = buf[:we.size(0) * n].view(we.size(0), n)  # (vocab, n)
                if dtype == acc:
                    torch.mm(wd, hc.t(), out=logits)
                else:
                    logits.copy_(wd @ hc.t())
                picked = logits[pick, cols]
                top = logits.amax(0)
                e = logits.sub_(top).exp_()  # in place: the chunk is the only logit-sized buffer
                norm = e.sum(0)
                total += ((top + norm.log() - picked) * keep).sum()
                if need_grad:  # d(sum of losses)/d(logits) = softmax - one_hot, 0 at ignored rows
                    kept = keep.to(acc)
                    g = e.mul_(kept / norm)
                    g.index_put_((pick, cols), -kept, accumulate=True)
                    g = g.to(dtype)
                    torch.mm(g.t(), wd, out=dh[s:s + n])
                    if dwe is None:  # the first chunk writes it: no zero-filled pass over its pages
                        dwe = (g @ hc).to(acc)
                    elif dtype == acc:
                        dwe.addmm_(g, hc)
                    else:
                        dwe += (g @ hc).to(acc)
            if need_grad and dwe is None:  # no rows
                dwe = torch.zeros(we.shape, dtype=acc, device=we.device)
        ctx.grads = (dh.to(h.dtype) if need_grad else None, dwe.to(we.dtype) if need_grad else None)
        return total

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        if ctx.grads is None:
            raise RuntimeError("chunked_lm_loss: a second backward pass through the same loss (retain_graph=True) "
                               "is not supported, as its gradients were handed over scaled in place; compute "
                               "the loss again")
        (dh, dwe), ctx.grads = ctx.grads, None
        # in place: a scaled copy of the embedding-sized gradient would be one more fresh
        # buffer a step, whose page faults cost several times the multiplication on CPU
        return (dh.mul_(grad) if ctx.needs_input_grad[0] else None,
                dwe.mul_(grad) if ctx.needs_input_grad[1] else None, None, None, None)


def chunked_lm_loss(h, we, targets, reduction='mean', rows=None, buffer=None):
    """Cross entropy of the tied LM head's logits h @ we.T, as
    `F.cross_entropy(h @ we.T, targets, ignore_index=-100)`, without the (N, vocab)
    logits: they are computed `rows` at a time (default chunk_rows), the softmax and its
    gradient formed in place, and the gradients of h and we accumulated in the forward
    pass, so that the same three matmuls run with one chunk-sized buffer in place of
    several logit-sized tensors (memory O(rows * vocab + N * n_embd), not O(N * vocab)).

    h (..., n_embd) hidden states, we (vocab, n_embd) the embedding matrix, targets
    (...) long token ids, IGNORE_INDEX where no loss is wanted. Under autocast the
    matmuls run in its dtype and the softmax in float32. reduction 'mean' (over the
    kept targets; nan when there is none, as F.cross_entropy), 'sum', or 'none' (the
    per-target losses, 0 where ignored, shape targets.shape). 'none' has no chunked
    gradient (weighting each row differently needs the logits again): with a gradient
    required it computes the logits whole. buffer: a ChunkBuffer to hold the chunk's
    logits on the CPU from call to call (None: a fresh one each call)."""
    h2, t = h.reshape(-1, h.size(-1)), targets.reshape(-1)
    if h2.size(0) != t.size(0):
        raise ValueError(f"h has {h2.size(0)} rows but targets {t.size(0)}: expected one target per row")
    rows = rows or chunk_rows(we.size(0))
    if reduction == 'none':
        if torch.is_grad_enabled() and (h.requires_grad or we.requires_grad):
            return F.cross_entropy(_upcast(h2 @ we.t()), t, ignore_index=IGNORE_INDEX,
                                   reduction='none').view(targets.shape)
        with torch.no_grad():
            out = [F.cross_entropy(_upcast(h2[s:s + rows] @ we.t()), t[s:s + rows], ignore_index=IGNORE_INDEX,
                                   reduction='none') for s in range(0, t.size(0), rows)]
        return torch.cat(out).view(targets.shape)
    if reduction not in ('mean', 'sum'):
        raise ValueError(f"reduction={reduction!r}: expected 'mean', 'sum' or 'none'")
    total = _ChunkedLMLoss.apply(h2, we, t, rows, buffer)
    return total / (t != IGNORE_INDEX).sum() if reduction == 'mean' else total


def lm_mask_from(M):
    """M (..., T) mask of real tokens -> bool (..., T), True at position t when
    the token at t + 1 is real, i.e. where the LM loss needs a prediction.

    Pass it to `DoubleHeadModel.forward(x, lm_mask=...)` and to the loss."""
    mask = torch.zeros(M.shape, dtype=torch.bool, device=M.device)
    mask[..., :-1] = M[..., 1:] > 0
    return mask


class _LossCompute:
    """Shared by the multiple-choice and classification losses; see the module doc."""

    def __init__(self, lm_criterion, clf_criterion, lm_coef, opt=None, n_acc=1, scaler=None):
        """lm_criterion, clf_criterion: per-item criteria such as
        `nn.CrossEntropyLoss(reduction='none')`. lm_coef: weight of the LM loss
        (0 or lm_logits=None: classifier loss alone). opt: the optimizer that
        `__call__` steps (None: only back-propagate). n_acc: calls per optimizer
        update (gradient accumulation). scaler: a `torch.amp.GradScaler` for fp16."""
        self.lm_criterion = lm_criterion
        self.clf_criterion = clf_criterion
        self.lm_coef = lm_coef
        self.accumulator = GradientAccumulator(opt, n_acc, scaler)

    @property
    def n_pending(self):
        """Micro-batches back-propagated since the last update."""
        return self.accumulator.n_pending

    # ---------------------------------------------------------------- pure
    def _seq_shape(self, X):
        """Leading dims of X that index sequences (everything before (T, 2))."""
        raise NotImplementedError

    def lm_losses(self, X, M, lm_logits, lm_mask=None):
        """Per-sequence LM loss: float tensor of shape X.shape[:-2]."""
        seq_shape = self._seq_shape(X)
        T = X.size(-2)
        n_seq = 1
        for d in seq_shape:
            n_seq *= d
        targets = X[..., 1:, 0].reshape(n_seq, T - 1)
        weights = M.reshape(n_seq, T)[:, 1:].to(torch.float32)
        if lm_mask is None:
            if lm_logits.size(0) != n_seq * (T - 1):
                raise ValueError(f"lm_logits has {lm_logits.size(0)} rows: expected {n_seq} sequences x {T - 1} "
                                 f"positions = {n_seq * (T - 1)}, or pass the lm_mask the model was called with")
            per_pos = self.lm_criterion(lm_logits.float(), targets.reshape(-1)).view(n_seq, T - 1)
        else:
            sel = lm_mask.reshape(n_seq, T)[:, :-1]
            if lm_mask.reshape(n_seq, T)[:, -1].any():
                raise ValueError("lm_mask is True at a sequence's last position, which has no next token")
            n_rows = int(sel.sum())
            if lm_logits.size(0) != n_rows:
                raise ValueError(f"lm_logits has {lm_logits.size(0)} rows but lm_mask selects {n_rows}")
            per_pos = torch.zeros(n_seq, T - 1, dtype=torch.float32, device=lm_logits.device)
            if n_rows:
                per_pos[sel] = self.lm_criterion(lm_logits.float(), targets[sel]).to(torch.float32)
            # positions the mask skipped must carry no weight
            weights = weights * sel
        lm = (per_pos * weights).sum(1) / weights.sum(1).clamp_min(torch.finfo(torch.float32).tiny)
        return lm.view(seq_shape)

    def losses(self, X, Y, M, clf_logits, lm_logits=None, lm_mask=None):
        """(clf_losses (n_examples,), lm_losses X.shape[:-2] or None)."""
        clf_losses = self.clf_criterion(clf_logits.float(), Y)
        lm_losses = None if lm_logits is None else self.lm_losses(X, M, lm_logits, lm_mask)
        return clf_losses, lm_losses

    def loss(self, X, Y, M, clf_logits, lm_logits=None, lm_mask=None):
        """The scalar objective mean(clf_losses) + lm_coef * mean(lm_losses)."""
        clf_losses, lm_losses = self.losses(X, Y, M, clf_logits, lm_logits if self.lm_coef else None, lm_mask)
        return self._objective(clf_losses, None if lm_losses is None else lm_losses.mean())

    def objective(self, Y, clf_logits, mean_lm_loss=None):
        """The same scalar objective from the mean LM loss over the sequences, for a caller
        that computed it itself (prefix.py's shared-prefix step); None: classifier loss alone."""
        return self._objective(self.clf_criterion(clf_logits.float(), Y), mean_lm_loss if self.lm_coef else None)

    def _objective(self, clf_losses, mean_lm_loss):
        train_loss = clf_losses.mean()
        if mean_lm_loss is not None:
            train_loss = train_loss + self.lm_coef * mean_lm_loss
        return train_loss

    # ---------------------------------------------------------------- training
    def __call__(self, X, Y, M, clf_logits, lm_logits=None, only_return_losses=False, lm_mask=None):
        if only_return_losses:
            clf_losses, lm_losses = self.losses(X, Y, M, clf_logits, lm_logits, lm_mask)
            return (clf_losses, lm_losses) if lm_logits is not None else clf_losses
        return self.train_on(self.loss(X, Y, M, clf_logits, lm_logits, lm_mask))

    def train_on(self, train_loss):
        """One micro-step on a scalar objective: raise NonFiniteLossError before the backward
        pass when it is NaN or inf, else back-propagate it (see backward). Returns it as a float."""
        value = train_loss.item()
        if not math.isfinite(value):  # before backward: the parameters stay finite
            raise NonFiniteLossError(f"the objective is {value}: training cannot go on (non-finite weights in the "
                                     f"checkpoint, or too high a learning rate?)")
        self.backward(train_loss)
        return value

    def backward(self, train_loss):
        """Back-propagate one micro-batch's objective; update every n_acc calls."""
        self.accumulator.backward(train_loss)

    def step(self):
        """Apply the accumulated gradients (if any and if there is an optimizer)."""
        return self.accumulator.step()


class MultipleChoiceLossCompute(_LossCompute):
    """X (B, n_choices, T, 2), M (B, n_choices, T), Y (B,), clf_logits (B, n_choices)."""

    def _seq_shape(self, X):
        if X.dim() != 4:
            raise ValueError(f"X of shape {tuple(X.shape)}: expected (batch, n_choices, n_ctx, 2)")
        return tuple(X.shape[:2])


class ClassificationLossCompute(_LossCompute):
    """X (B, T, 2), M (B, T), Y (B,), clf_logits (B, n_class)."""

    def _seq_shape(self, X):
        if X.dim() != 3:
            raise ValueError(f"X of shape {tuple(X.shape)}: expected (batch, n_ctx, 2)")
        return tuple(X.shape[:1])
