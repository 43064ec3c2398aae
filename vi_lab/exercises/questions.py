"""Checkers for the prediction questions of the notebooks ("predict, then run and compare").

Each notebook asks two or three questions whose answer is a number or a choice *before* the cell
that shows it. The student writes the prediction into a variable and calls::

    exercises.check_answer("05.toy_gradient", my_prediction)

which returns a :class:`~vi_lab.exercises.CheckResult`: correct, not yet answered (``None``), or
wrong with a hint for the usual wrong answers. Numeric answers are computed here from the
formula, independently of the notebook's cells, so a checker cannot agree with a notebook bug.

:data:`QUESTIONS` maps each question id (``"NN.name"``) to a :class:`Question`;
:func:`questions_of` lists a notebook's questions.
"""
import math

import numpy as onp

from ._check import CheckResult

__all__ = ["Question", "QUESTIONS", "check_answer", "questions_of"]


class Question:
    """One prediction question.

    Parameters
    ----------
    text : str
        The question, as the notebook asks it (used in the verdict).
    answer : float or str
        The correct number, or the correct option (a key of ``options``).
    explanation : str
        Shown with a correct answer: why it is right.
    options : dict of str to str, optional
        For a choice question, option key -> its wording. Without it the question is numeric.
    rtol : float, default 1e-3
        Relative tolerance of a numeric answer (tight enough that 0.5% off fails).
    atol : float, default 1e-9
    mistakes : list of (float or str, str)
        Known wrong answers (numbers or option keys) and the hint each gets.
    """

    def __init__(self, text, answer, explanation, options=None, rtol=1e-3, atol=1e-9, mistakes=()):
        self.text, self.answer, self.explanation = text, answer, explanation
        self.options, self.rtol, self.atol = options, rtol, atol
        self.mistakes = list(mistakes)
        if options is not None and answer not in options:
            raise ValueError(f"answer {answer!r} is not one of the options {sorted(options)}")

    @property
    def kind(self):
        return "number" if self.options is None else "choice"

    def _close(self, got, target):
        return abs(got - target) <= self.atol + self.rtol * abs(target)

    def check(self, qid, answer):
        exercise = f"question {qid}: {self.text}"
        if answer is None:
            what = ("a number" if self.options is None
                    else "one of " + ", ".join(repr(k) for k in self.options))
            return CheckResult(exercise, False, [f"not answered yet: set your prediction ({what}) and rerun"])
        if self.options is not None:
            return self._check_choice(exercise, answer)
        return self._check_number(exercise, answer)

    def _check_choice(self, exercise, answer):
        key = str(answer).strip().strip("()").lower()
        if key not in self.options:
            listing = "; ".join(f"{k!r}: {v}" for k, v in self.options.items())
            return CheckResult(exercise, False, [f"{answer!r} is not one of the options: {listing}"])
        if key == self.answer:
            return CheckResult(exercise, True, [f"({key}) {self.options[key]}", self.explanation])
        hints = [hint for value, hint in self.mistakes if value == key]
        return CheckResult(exercise, False, hints + [f"({key}) {self.options[key]} is not it; run the next cell "
                                                     "and compare"])

    def _check_number(self, exercise, answer):
        try:
            got = float(onp.asarray(answer, dtype=float))
        except (TypeError, ValueError):
            return CheckResult(exercise, False, [f"expected a single number, got {type(answer).__name__} "
                                                 f"{answer!r}"])
        if not math.isfinite(got):
            return CheckResult(exercise, False, [f"your answer {got} is not a finite number"])
        if self._close(got, self.answer):
            return CheckResult(exercise, True, [f"{got:.6g} (exact: {self.answer:.6g})", self.explanation])
        hints = [hint for value, hint in self.mistakes if self._close(got, value)]
        if not hints and self.answer != 0 and abs(got / self.answer - 1) < 0.05:
            hints = [f"close ({100 * abs(got / self.answer - 1):.2g}% off) but not within the tolerance of "
                     f"{100 * self.rtol:.2g}%: compute it from the formula rather than reading it off a plot"]
        return CheckResult(exercise, False, hints + [f"{got:.6g} is not it; run the next cell and compare"])


def _sigmoid(t):
    return 1.0 / (1.0 + math.exp(-t))


_TOY_GRAD = _sigmoid(0.0) * (1 - _sigmoid(0.0)) * (1 - 2 * 0.45)      # d/dphi E[(b - t)^2] at phi = 0, t = 0.45

QUESTIONS = {
    # ------------------------------------------------------------------ 01
    "01.cost_ratio": Question(
        "how many times longer than K = 10 does exact log p(x) take with K = 20 latents (same data, same decoder)?",
        2.0 ** 10,
        "the sum has 2**K terms, so ten more latents multiply the work by 2**10 = 1024",
        rtol=1e-6,
        mistakes=[(2.0, "2 is the factor for ONE more latent; ten more latents double it ten times"),
                  (20.0 / 10.0, "the cost is not proportional to K: it is proportional to 2**K"),
                  (2.0 ** 20, "2**20 is the number of terms at K = 20; the question asks for the ratio to K = 10"),
                  (10.0, "the cost is not proportional to K: it is proportional to 2**K")]),
    "01.marginals_choice": Question(
        "p1 puts probability 1/2 on z = (0, 1) and 1/2 on z = (1, 0); p2 puts 1/2 on (0, 0) and 1/2 on (1, 1). "
        "Do their marginals p(z_k = 1) tell them apart?",
        "b",
        "both have p(z_1 = 1) = p(z_2 = 1) = 1/2: the marginals forget which switches go together, "
        "exactly what a mean-field q (notebook 02) cannot represent",
        options={"a": "yes, the marginals differ", "b": "no, both have marginals (1/2, 1/2)"},
        mistakes=[("a", "compute them: p1(z_1 = 1) = p1(1, 0) = 1/2 and p2(z_1 = 1) = p2(1, 1) = 1/2")]),
    "01.total_probability": Question(
        "what is the log of the sum of p(x) over all 2**16 possible images?",
        0.0,
        "p(x) is a distribution over images: the total is 1 and its log 0 (up to round-off)",
        atol=1e-9,
        mistakes=[(1.0, "the total probability is 1, so its LOG is 0"),
                  (16 * math.log(2.0), "16 log 2 is the log of the NUMBER of images, not of their total probability")]),
    # ------------------------------------------------------------------ 02
    "02.point_mass_elbo": Question(
        "q puts all its mass on one state z* (logits +-1e4). Which is its ELBO?",
        "a",
        "with q(z*) = 1 the entropy is 0 and the ELBO is the single term log p(x, z*) = log p(x) + log p(z*|x): "
        "below log p(x) by -log p(z*|x), unless the posterior itself is that point mass",
        options={"a": "log p(x, z*)", "b": "log p(x)", "c": "log p(x|z*)", "d": "0"},
        mistakes=[("b", "that needs q = p(z|x); a point mass at z* misses the rest of the posterior"),
                  ("c", "the prior term log p(z*) is still there: ELBO = E_q[log p(x|z) + log p(z) - log q(z)]"),
                  ("d", "the entropy is 0, not the ELBO: what is left is E_q[log p(x, z)]")]),
    "02.rmse_ratio": Question(
        "by what factor does the RMSE of the Monte Carlo ELBO estimate shrink from S = 16 to S = 1024 samples?",
        8.0,
        "the error falls like 1/sqrt(S): sqrt(1024 / 16) = sqrt(64) = 8",
        mistakes=[(64.0, "64 is the ratio of the VARIANCES (1/S); the RMSE is its square root"),
                  (1.0 / 8.0, "the question asks by what factor it SHRINKS: a number above 1")]),
    "02.table_size": Question(
        "how many variational parameters does per-datapoint VI need for N = 1,000,000 images with K = 8 latents?",
        8.0e6,
        "one logit per latent per image: N K = 8 million, growing with the data set",
        rtol=1e-6,
        mistakes=[(8.0, "that is one image's q; every image has its own row"),
                  (2.0 ** 8 * 1e6, "mean field stores K logits per image, not the 2**K probabilities of a full table")]),
    # ------------------------------------------------------------------ 03
    "03.encoder_size": Question(
        "how many parameters has an encoder with L = 16 inputs, one hidden layer of H = 64 units and K = 8 outputs?",
        (16 + 1) * 64 + (64 + 1) * 8,
        "(L + 1) H + (H + 1) K = 1088 + 520 = 1608: weights and biases of two layers, independent of N",
        rtol=1e-6,
        mistakes=[(16 * 64 + 64 * 8, "you left out the biases b0 (H of them) and b1 (K)"),
                  (16 * 64 + 64 * 8 + 64, "the output bias b1 (K = 8 numbers) is missing"),
                  (16 * 64 + 64 * 8 + 8, "the hidden bias b0 (H = 64 numbers) is missing"),
                  (120 * 8, "that is the per-datapoint table for 120 images, not the encoder")]),
    "03.where_gap": Question(
        "is the mean amortization gap larger on the training images or on the held-out images?",
        "b",
        "the encoder was fitted to the training images; on new ones it must generalize, and where it fails the "
        "per-image optimum q* is better than its output",
        options={"a": "training images", "b": "held-out images", "c": "about the same"},
        mistakes=[("a", "the encoder's weights were chosen on the training images: it fits those best"),
                  ("c", "run the next cell: the two means differ clearly")]),
    "03.gap_sign": Question(
        "can the amortization gap ELBO(q*) - ELBO(encoder's q), with q* from fit_local started at the encoder's "
        "logits, be negative?",
        "b",
        "fit_local only climbs the ELBO from where it starts, so ELBO(q*) >= ELBO(encoder's q) and the gap is >= 0",
        options={"a": "yes", "b": "no"},
        mistakes=[("a", "started from the encoder's logits, coordinate ascent never goes downhill")]),
    # ------------------------------------------------------------------ 04
    "04.rws_k1": Question(
        "what is the expectation of the reweighted wake-sleep wake-phi direction with k = 1 sample?",
        0.0,
        "with one sample its normalized weight is 1, so the direction is z - sigmoid(psi) with z ~ q: mean zero",
        atol=1e-12,
        mistakes=[(1.0, "the normalized weight is 1, but the direction z - sigmoid(psi) has mean 0 under q")]),
    "04.which_kl_smaller": Question(
        "on the image of section 5, which mean-field q has the smaller KL(p(z|x) || q)?",
        "b",
        "KL(p || q) over mean-field q is minimized exactly by matching the posterior marginals",
        options={"a": "the ELBO's best q (fit_local)", "b": "the q matching the posterior marginals",
                 "c": "they are equal"},
        mistakes=[("a", "the ELBO's q minimizes KL(q || p), the other direction"),
                  ("c", "they minimize two different divergences, so they differ unless q can equal p")]),
    "04.largest_gap": Question(
        "which method's encoder has the largest KL(q || p) on the training images after 400 steps?",
        "b",
        "the sleep phase trains the encoder on KL(p || q) over dreams, not on the ELBO's KL(q || p) over the data",
        options={"a": "amortized (ELBO)", "b": "wake_sleep", "c": "reweighted_wake_sleep"},
        mistakes=[("a", "amortized VI trains its encoder on exactly this gap"),
                  ("c", "RWS's encoder also targets KL(p || q), but on the data and with importance weights")]),
    # ------------------------------------------------------------------ 05
    "05.toy_gradient": Question(
        "what is d/dphi E[(b - t)^2] for b ~ Bernoulli(sigmoid(phi)) at phi = 0, t = 0.45?",
        _TOY_GRAD,
        "sigma(0) (1 - sigma(0)) (1 - 2t) = 0.25 x 0.1 = 0.025: tiny next to f(0) = 0.2025 and f(1) = 0.3025",
        mistakes=[(1 - 2 * 0.45, "that is d/dp with p = sigmoid(phi); the chain rule adds dp/dphi = 0.25"),
                  (-_TOY_GRAD, "the sign: raising phi makes b = 1 likelier, and f(1) = 0.3025 > f(0) = 0.2025"),
                  (0.5 * (1 - 2 * 0.45), "dp/dphi at phi = 0 is sigma (1 - sigma) = 0.25, not 0.5")]),
    "05.bias_with_s": Question(
        "with 10 times more samples S, what happens to the Concrete estimator's squared bias?",
        "c",
        "the bias is that of E[f(relaxed z)] versus E[f(z)]; averaging more samples only removes variance",
        options={"a": "falls 10 times", "b": "falls sqrt(10) times", "c": "stays the same"},
        mistakes=[("a", "that is what happens to the VARIANCE; a bias is not averaged away"),
                  ("b", "no power of S: the bias does not depend on S at all")]),
    "05.crossover": Question(
        "a score-function estimator has single-sample variance 40, a relaxed one squared bias 0.05 (and "
        "negligible variance). From how many samples S is the unbiased one more accurate?",
        40 / 0.05,
        "S* = Var_1 / bias^2 = 40 / 0.05 = 800: beyond it Var_1 / S is below the bias floor",
        mistakes=[(math.sqrt(40 / 0.05), "the variance falls like 1/S, not 1/sqrt(S): S* = Var_1 / bias^2"),
                  (40 / math.sqrt(0.05), "0.05 is already the SQUARED bias: compare it with Var_1 / S directly")]),
    # ------------------------------------------------------------------ 06
    "06.shift_variance": Question(
        "plain REINFORCE, S = 4, f shifted by c = 10: roughly how many times its variance at c = 1 "
        "(when the shift dominates f)?",
        "c",
        "each estimate gains c (z - sigma(psi)) / S, so the variance grows like (f + c)^2, on the order of c^2: "
        "here about 70 times from c = 1 to c = 10 (f itself is about 0.25)",
        options={"a": "about the same", "b": "about 10 times", "c": "about 100 times"},
        mistakes=[("a", "the MEAN stays the same (the score has mean zero); the variance does not"),
                  ("b", "the added term is proportional to c, so its variance to c^2")]),
    "06.mean_baseline": Question(
        "with S = 4, the mean of ALL samples as baseline gives (S - 1)/S times the RLOO estimate. What fraction "
        "of the true gradient does it estimate?",
        0.75,
        "(S - 1)/S = 3/4: each sample's own f(z_s) is 1/S of the baseline and correlates with its score",
        mistakes=[(1.0, "that would be unbiased; including f(z_s) in its own baseline is what breaks it"),
                  (0.25, "1/S is the share of f(z_s) in the baseline; the estimate keeps (S - 1)/S")]),
    "06.disarm_one_latent": Question(
        "one latent, psi = 1 (not 0): is DisARM's variance zero?",
        "b",
        "at psi = 0 the antithetic pair always disagrees, so every estimate is the same number; at psi != 0 the "
        "pair agrees with probability |2 sigma(psi) - 1| > 0 and the estimate is then 0, so it varies",
        options={"a": "yes, DisARM is exact with one latent", "b": "no, only at psi = 0"},
        mistakes=[("a", "the estimate is 0 whenever b and b~ agree, which happens with probability "
                        "|2 sigma(psi) - 1| > 0 away from psi = 0")]),
    # ------------------------------------------------------------------ 07
    "07.iwae_k1": Question(
        "which quantity is the IWAE bound L_k for k = 1?",
        "a",
        "with one sample log (1/k) sum_i w_i = log w_1, whose expectation under q is the ELBO",
        options={"a": "the ELBO", "b": "log p(x)", "c": "log p(x) - log 1"},
        mistakes=[("b", "log p(x) is the limit as k grows; one sample gives E_q[log w] = ELBO"),
                  ("c", "log (1/1) = 0, but the expectation of log w is still below log E[w] = log p(x)")]),
    "07.ml_gap": Question(
        "the same model trained by exact maximum likelihood instead of the ELBO: is the approximation gap of its "
        "posteriors larger or smaller?",
        "a",
        "the ELBO rewards models whose posteriors mean field can fit; maximum likelihood does not care",
        options={"a": "larger", "b": "smaller", "c": "the same"},
        mistakes=[("b", "the ELBO-trained model adapted to mean field; the ML model had no reason to"),
                  ("c", "the two models differ, and so do their posteriors")]),
    "07.iwae_limit": Question(
        "for k -> infinity, what is IWAE_k minus log p(x), in nats?",
        0.0,
        "the average of k weights tends to E_q[w] = p(x), so the bound tends to log p(x) (for a q that covers "
        "the posterior)",
        atol=1e-12,
        mistakes=[]),
    # ------------------------------------------------------------------ 08
    "08.n_states": Question(
        "with K = 12 binary latents, how many decoder evaluations per image does exact log p(x) need?",
        2.0 ** 12,
        "one per latent state: 2**12 = 4096, against 2 per sample for DisARM",
        rtol=1e-6,
        mistakes=[(12.0, "the sum runs over all 2**K states, not over the K latents"),
                  (2.0 ** 64, "that is the number of possible 8 x 8 images, not of latent states")]),
    "08.gap_sign": Question(
        "on held-out digits, will the gap log p(x) - ELBO(encoder) be larger or smaller than on the training digits?",
        "a",
        "the amortization gap grows on images the encoder was not trained on (notebook 03)",
        options={"a": "larger", "b": "smaller", "c": "the same"},
        mistakes=[("b", "the encoder fits the training digits best"),
                  ("c", "the encoder has to generalize to the held-out digits")]),
}


def questions_of(notebook):
    """The ids of the questions of one notebook, e.g. ``questions_of("05")``."""
    prefix = f"{notebook[:2]}."
    return [qid for qid in QUESTIONS if qid.startswith(prefix)]


def check_answer(question, answer):
    """Check a prediction against the answer of a notebook question.

    Parameters
    ----------
    question : str
        Its id, e.g. ``"05.toy_gradient"`` (see :data:`QUESTIONS`).
    answer : float, str or None
        A number, or an option key (``"a"``, ``"b"``, ...) for a choice question; ``None`` means
        not answered yet.

    Returns
    -------
    CheckResult
        Correct (with the reason), not answered yet, or wrong with a hint for the known wrong answers.

    Raises
    ------
    ValueError
        For an unknown question id (a misuse of the checker, not a wrong answer).
    """
    if question not in QUESTIONS:
        raise ValueError(f"unknown question {question!r}; known: {', '.join(QUESTIONS)}")
    return QUESTIONS[question].check(question, answer)
