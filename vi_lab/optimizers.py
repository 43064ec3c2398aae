"""Gradient ASCENT optimizers (Adam, SGD with momentum) for nested dicts of arrays.

Sign convention
---------------
Everything vi_lab optimizes is a bound to be *maximized* (ELBO, IWAE, log p(x)), so these
optimizers **ascend** by default: the gradient you pass is the gradient of the objective to
maximize, and each step moves *along* it, ``params <- params + lr * direction``. This is the
opposite of ``autograd.misc.optimizers``, which minimizes. To minimize a loss, either pass
``maximize=False`` or pass the gradient of the negated loss.

Two ways to use them, in the style of ``autograd.misc.optimizers``:

- functions ``adam(grad, params, callback, num_iters, step_size, ...)`` and ``sgd(...)`` that
  run the whole loop, where ``grad(params, step)`` returns a gradient tree and
  ``callback(params, step, g)`` is called before every update;
- the classes :class:`Adam` and :class:`SGD`, with ``state = opt.init(params)`` and
  ``params, state = opt.update(params, grads, state, rows=None)``, for training loops that
  need to interleave other work (``vi_lab.inference.fit`` uses these).

``rows=`` gives *sparse row updates*: the gradient leaves then hold only the rows ``rows`` of
each parameter leaf (first axis), and only those rows (and their moment estimates, with their
own step counts for Adam's bias correction) change. Per-datapoint variational tables use it,
so a mini-batch step touches exactly the rows of the batch.

Learning rates may be a positive float (constant), a schedule from :func:`exponential_decay`,
or any callable ``step -> float`` (step counts updates from 0).
"""
import numbers

import numpy as onp

from ._tree import tree_map, tree_zeros_like
from ._validation import check_bool

__all__ = ["Adam", "SGD", "adam", "sgd", "constant", "exponential_decay", "as_schedule"]


# ---------------------------------------------------------------------------- schedules
class constant:
    """Constant learning rate: lr(t) = value."""

    def __init__(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
            raise ValueError(f"learning_rate: expected a positive number or a callable step -> rate, got {value!r}")
        self.value = float(value)

    def __call__(self, step):
        return self.value

    def config(self):
        """JSON-serializable description (for saved runs)."""
        return {"schedule": "constant", "value": self.value}

    def __repr__(self):
        return f"constant({self.value!r})"


class exponential_decay:
    """Exponentially decaying learning rate.

    Parameters
    ----------
    initial : float
        lr(0).
    decay_rate : float in (0, 1]
        Factor applied every ``decay_steps`` updates.
    decay_steps : int
    minimum : float, default 0.0
        Floor of the rate.

    Notes
    -----
    lr(t) = max(minimum, initial * decay_rate ** (t / decay_steps)), smooth in t.
    """

    def __init__(self, initial, decay_rate, decay_steps, minimum=0.0):
        self.initial = constant(initial).value
        if not 0.0 < decay_rate <= 1.0:
            raise ValueError(f"decay_rate: expected a factor in (0, 1], got {decay_rate!r}")
        if isinstance(decay_steps, bool) or not isinstance(decay_steps, numbers.Integral) or decay_steps < 1:
            raise ValueError(f"decay_steps: expected an integer >= 1, got {decay_steps!r}")
        if not 0.0 <= minimum <= self.initial:
            raise ValueError(f"minimum: expected a floor in [0, initial], got {minimum!r}")
        self.decay_rate, self.decay_steps, self.minimum = float(decay_rate), int(decay_steps), float(minimum)

    def __call__(self, step):
        return max(self.minimum, self.initial * self.decay_rate ** (step / self.decay_steps))

    def config(self):
        """JSON-serializable description (for saved runs)."""
        return {"schedule": "exponential_decay", "initial": self.initial, "decay_rate": self.decay_rate,
                "decay_steps": self.decay_steps, "minimum": self.minimum}

    def __repr__(self):
        return (f"exponential_decay({self.initial!r}, {self.decay_rate!r}, {self.decay_steps!r}, "
                f"minimum={self.minimum!r})")


def as_schedule(learning_rate):
    """Turn a float or callable into a schedule ``step -> rate``.

    Parameters
    ----------
    learning_rate : float > 0 or callable
        A float gives :class:`constant`; a callable (e.g. :class:`exponential_decay`, or any
        ``lambda step: ...``) is returned unchanged.

    Returns
    -------
    callable
    """
    if callable(learning_rate):
        return learning_rate
    return constant(learning_rate)


def schedule_config(schedule):
    """A JSON-serializable description of a schedule (``repr`` for user callables)."""
    if hasattr(schedule, "config"):
        return schedule.config()
    return {"schedule": "callable", "repr": repr(schedule)}


def _rate(schedule, step):
    rate = float(schedule(step))
    if not onp.isfinite(rate) or rate < 0:
        raise ValueError(f"learning_rate: the schedule returned {rate!r} at step {step}; expected a finite rate >= 0")
    return rate


def _row_counts(params):
    return tree_map(lambda p: onp.zeros(onp.shape(p)[:1], dtype=onp.int64), params)


def _check_rows(rows, params):
    if rows is None:
        return None
    rows = onp.asarray(rows)
    if rows.ndim != 1 or rows.dtype.kind not in "iu":
        raise ValueError(f"rows: expected a 1-D integer array of row indices, got shape {rows.shape}, dtype {rows.dtype}")
    if onp.unique(rows).size != rows.size:
        raise ValueError("rows: indices must be distinct (one gradient row per parameter row)")
    return rows


# ---------------------------------------------------------------------------- optimizers
class Adam:
    """Adam (Kingma & Ba, 2015) as a gradient-ascent step on nested dicts of arrays.

    Parameters
    ----------
    learning_rate : float or callable, default 1e-3
        Step size or schedule ``step -> rate``.
    b1, b2 : float, default 0.9, 0.999
        Decay rates of the first and second moment estimates.
    eps : float, default 1e-8
    maximize : bool, default True
        Ascend the gradient (vi_lab's convention); ``False`` descends.

    Notes
    -----
    For every coordinate, with g the gradient and t the number of updates it has received:
    m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) g^2,
    params <- params +- lr(step) * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
    With ``rows`` only the given rows are touched and t counts updates per row.
    """

    def __init__(self, learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8, maximize=True):
        self.schedule = as_schedule(learning_rate)
        for name, value in (("b1", b1), ("b2", b2)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name}: expected a decay rate in [0, 1), got {value!r}")
        if not eps > 0:
            raise ValueError(f"eps: expected a positive number, got {eps!r}")
        self.b1, self.b2, self.eps = float(b1), float(b2), float(eps)
        self.sign = 1.0 if check_bool(maximize, "maximize") else -1.0

    def config(self):
        """JSON-serializable description (for saved runs)."""
        return {"optimizer": "adam", "learning_rate": schedule_config(self.schedule), "b1": self.b1,
                "b2": self.b2, "eps": self.eps, "maximize": self.sign > 0}

    def init(self, params):
        """Optimizer state for ``params``: zero moments and zero step counts."""
        return {"step": 0, "m": tree_zeros_like(params), "v": tree_zeros_like(params), "count": _row_counts(params)}

    def update(self, params, grads, state, rows=None):
        """One Adam step.

        Parameters
        ----------
        params : nested dict of ndarray
        grads : nested dict of ndarray
            Same structure as ``params``; with ``rows`` each leaf holds only those rows
            (shape (len(rows),) + leaf.shape[1:]).
        state : dict
            From :meth:`init` or the previous :meth:`update`.
        rows : ndarray of int, shape (B,), optional
            Distinct row indices (first axis of every leaf) that the gradient is for.

        Returns
        -------
        params, state
            New objects; the inputs are not modified.
        """
        rows = _check_rows(rows, params)
        rate = self.sign * _rate(self.schedule, state["step"])
        b1, b2, eps = self.b1, self.b2, self.eps

        def leaf(p, g, m, v, t):
            p, m, v, t = onp.array(p, dtype=float), m.copy(), v.copy(), t.copy()
            sel = Ellipsis if rows is None else rows
            g = onp.asarray(g, dtype=float)
            m[sel] = b1 * m[sel] + (1.0 - b1) * g
            v[sel] = b2 * v[sel] + (1.0 - b2) * g * g
            t[sel] += 1
            # per-row step counts broadcast over the remaining axes of the leaf
            tt = t[sel].reshape(onp.shape(t[sel]) + (1,) * (onp.ndim(p) - 1)) if onp.ndim(p) else t
            m_hat = m[sel] / (1.0 - b1 ** tt)
            v_hat = v[sel] / (1.0 - b2 ** tt)
            p[sel] = p[sel] + rate * m_hat / (onp.sqrt(v_hat) + eps)
            return p, m, v, t

        out = tree_map(leaf, params, grads, state["m"], state["v"], state["count"])
        new_params = tree_map(lambda _, o: o[0], params, out)
        new_state = {"step": state["step"] + 1,
                     "m": tree_map(lambda _, o: o[1], params, out),
                     "v": tree_map(lambda _, o: o[2], params, out),
                     "count": tree_map(lambda _, o: o[3], params, out)}
        return new_params, new_state


class SGD:
    """Stochastic gradient ascent with (optional) momentum, on nested dicts of arrays.

    Parameters
    ----------
    learning_rate : float or callable, default 0.1
    mass : float in [0, 1), default 0.9
        Momentum; 0 gives plain SGD.
    maximize : bool, default True
        Ascend the gradient (vi_lab's convention); ``False`` descends.

    Notes
    -----
    velocity <- mass * velocity + (1 - mass) * g,  params <- params +- lr(step) * velocity
    (the exponential-moving-average momentum of ``autograd.misc.optimizers.sgd``, so with
    ``mass=0`` a step is exactly lr * g). With ``rows`` only those rows move.
    """

    def __init__(self, learning_rate=0.1, mass=0.9, maximize=True):
        self.schedule = as_schedule(learning_rate)
        if not 0.0 <= mass < 1.0:
            raise ValueError(f"mass: expected a momentum in [0, 1), got {mass!r}")
        self.mass = float(mass)
        self.sign = 1.0 if check_bool(maximize, "maximize") else -1.0

    def config(self):
        """JSON-serializable description (for saved runs)."""
        return {"optimizer": "sgd", "learning_rate": schedule_config(self.schedule), "mass": self.mass,
                "maximize": self.sign > 0}

    def init(self, params):
        """Optimizer state for ``params``: zero velocity."""
        return {"step": 0, "velocity": tree_zeros_like(params)}

    def update(self, params, grads, state, rows=None):
        """One SGD step; same arguments and return values as :meth:`Adam.update`."""
        rows = _check_rows(rows, params)
        rate = self.sign * _rate(self.schedule, state["step"])
        mass = self.mass

        def leaf(p, g, vel):
            p, vel = onp.array(p, dtype=float), vel.copy()
            sel = Ellipsis if rows is None else rows
            vel[sel] = mass * vel[sel] + (1.0 - mass) * onp.asarray(g, dtype=float)
            p[sel] = p[sel] + rate * vel[sel]
            return p, vel

        out = tree_map(leaf, params, grads, state["velocity"])
        return (tree_map(lambda _, o: o[0], params, out),
                {"step": state["step"] + 1, "velocity": tree_map(lambda _, o: o[1], params, out)})


# ---------------------------------------------------------------------------- autograd-style loops
def _run(optimizer, grad, params, callback, num_iters):
    if isinstance(num_iters, bool) or not isinstance(num_iters, numbers.Integral) or num_iters < 0:
        raise ValueError(f"num_iters: expected an integer >= 0, got {num_iters!r}")
    state = optimizer.init(params)
    for i in range(num_iters):
        g = grad(params, i)
        if callback is not None:
            callback(params, i, g)
        params, state = optimizer.update(params, g, state)
    return params


def adam(grad, params, callback=None, num_iters=100, step_size=1e-3, b1=0.9, b2=0.999, eps=1e-8,
         maximize=True):
    """Run Adam for ``num_iters`` steps, ascending ``grad`` (see the module docstring).

    Parameters
    ----------
    grad : callable
        ``grad(params, step) -> gradient tree`` of the objective to maximize.
    params : nested dict of ndarray
        Starting point (not modified).
    callback : callable, optional
        ``callback(params, step, g)``, called before each update.
    num_iters : int
    step_size : float or callable
        Learning rate or schedule ``step -> rate``.
    b1, b2, eps : float
        See :class:`Adam`.
    maximize : bool, default True

    Returns
    -------
    nested dict of ndarray
        The final parameters.
    """
    return _run(Adam(step_size, b1, b2, eps, maximize), grad, params, callback, num_iters)


def sgd(grad, params, callback=None, num_iters=200, step_size=0.1, mass=0.9, maximize=True):
    """Run SGD with momentum for ``num_iters`` steps, ascending ``grad``.

    Parameters and return value as :func:`adam`; ``mass`` is the momentum of :class:`SGD`.
    """
    return _run(SGD(step_size, mass, maximize), grad, params, callback, num_iters)
