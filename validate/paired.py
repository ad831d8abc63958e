"""Two runs' predictions on the same samples, paired: which samples flip, and whether the
difference in accuracy is more than chance on this many samples.

On N samples an accuracy moves in steps of 1/N, and a drop of a few points can be one
sample. Paired, the question is how many samples the two runs get differently right:
``lost`` (A right, B wrong) and ``gained`` (A wrong, B right). The exact McNemar test
asks whether ``lost`` and ``gained`` are more unequal than fair coin flips of the
``lost + gained`` discordant samples would make them (two-sided binomial, p = 1 when
none differ); the 95 % interval of the accuracy difference is Newcombe's hybrid score
interval for paired proportions (his method 10: Wilson intervals of both accuracies
combined with the correlation of the pairs), which stays inside [-1, 1] and is sensible
for small N and for differences near 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

#: the significance level the reports state results at
ALPHA = 0.05
_Z95 = 1.959963984540054  # the two-sided 95 % normal quantile


def mcnemar_exact(lost: int, gained: int) -> float:
    """Two-sided exact McNemar p-value of ``lost`` against ``gained`` discordant pairs."""
    n = int(lost) + int(gained)
    if n == 0:
        return 1.0
    k = min(int(lost), int(gained))
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2.0 * tail)


def wilson(successes: int, n: int, z: float = _Z95) -> Tuple[float, float]:
    """Wilson score interval of a proportion (``(0, 1)`` for n = 0)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference_interval(both: int, lost: int, gained: int, neither: int,
                               z: float = _Z95) -> Tuple[float, float]:
    """Newcombe's (1998) method-10 interval of accuracy(A) - accuracy(B) from the 2x2 counts:
    ``both`` right, ``lost`` (A right only), ``gained`` (B right only), ``neither``."""
    n = both + lost + gained + neither
    if n == 0:
        return -1.0, 1.0
    p1, p2 = (both + lost) / n, (both + gained) / n
    l1, u1 = wilson(both + lost, n, z)
    l2, u2 = wilson(both + gained, n, z)
    denom = (both + lost) * (gained + neither) * (both + gained) * (lost + neither)
    phi = (both * neither - lost * gained) / math.sqrt(denom) if denom else 0.0
    theta = p1 - p2
    delta = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    eps = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return max(-1.0, theta - delta), min(1.0, theta + eps)


@dataclass(frozen=True)
class PairedAccuracy:
    """Accuracy of run A and run B on the same samples (A: the reference, e.g. the float model).

    ``lost_samples``: samples A gets right and B wrong (B's drop); ``gained_samples``: the
    reverse. ``drop`` = accuracy(A) - accuracy(B) = (lost - gained) / n.
    """

    n: int
    correct_a: int
    correct_b: int
    lost_samples: Tuple[int, ...]
    gained_samples: Tuple[int, ...]

    @property
    def lost(self) -> int:
        return len(self.lost_samples)

    @property
    def gained(self) -> int:
        return len(self.gained_samples)

    @property
    def accuracy_a(self) -> float:
        return self.correct_a / self.n if self.n else float("nan")

    @property
    def accuracy_b(self) -> float:
        return self.correct_b / self.n if self.n else float("nan")

    @property
    def drop(self) -> float:
        return self.accuracy_a - self.accuracy_b

    @property
    def p_value(self) -> float:
        """Exact McNemar p-value of the difference."""
        return mcnemar_exact(self.lost, self.gained)

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA

    @property
    def interval(self) -> Tuple[float, float]:
        """95 % interval of the drop (accuracy A - accuracy B)."""
        both = self.correct_a - self.lost
        return paired_difference_interval(both, self.lost, self.gained, self.n - both - self.lost - self.gained)

    def describe(self) -> str:
        """How many samples carry the difference and whether it is more than chance, e.g. "1 sample
        flips (lost: sample 32): not significant on 33 samples (exact McNemar p = 1; 95 % interval
        of the drop -5.7 to +13.0 points)"."""
        flips = self.lost + self.gained
        if flips == 0:
            return f"no sample flips: both runs are right on the same {self.correct_a} of {self.n} samples"
        parts = []
        if self.lost:
            parts.append(f"lost: {_samples(self.lost_samples)}")
        if self.gained:
            parts.append(f"gained: {_samples(self.gained_samples)}")
        lo, hi = self.interval
        verdict = "significant" if self.significant else "not significant"
        return (f"{flips} sample{'s' if flips != 1 else ''} flip{'' if flips != 1 else 's'} ({'; '.join(parts)}): "
                f"{verdict} on {self.n} samples (exact McNemar p = {self.p_value:.2g}; 95 % interval of the drop "
                f"{100 * lo:+.1f} to {100 * hi:+.1f} points)")

    def to_dict(self) -> dict:
        lo, hi = self.interval
        return dict(n=self.n, accuracy_a=self.accuracy_a, accuracy_b=self.accuracy_b, drop=self.drop,
                    lost=self.lost, gained=self.gained, lost_samples=list(self.lost_samples),
                    gained_samples=list(self.gained_samples), p_value=self.p_value, significant=self.significant,
                    interval=[lo, hi], alpha=ALPHA)


def _samples(ids: Sequence[int], most: int = 8) -> str:
    shown = ", ".join(str(i) for i in ids[:most])
    more = f" and {len(ids) - most} more" if len(ids) > most else ""
    return f"sample{'s' if len(ids) != 1 else ''} {shown}{more}"


def paired_accuracy(pred_a, pred_b, truth, sample_ids: Optional[Sequence[int]] = None) -> PairedAccuracy:
    """:class:`PairedAccuracy` of two runs' predicted classes against ``truth`` (labels, or a
    reference run's predictions), one per sample; ``sample_ids``: the samples' numbers."""
    pred_a, pred_b, truth = (np.asarray(x).reshape(-1) for x in (pred_a, pred_b, truth))
    if not pred_a.shape == pred_b.shape == truth.shape:
        raise ValueError(f"one prediction per sample on both sides: {pred_a.shape}, {pred_b.shape}, {truth.shape}")
    ids: List[int] = list(range(pred_a.size)) if sample_ids is None else [int(i) for i in sample_ids]
    ra, rb = pred_a == truth, pred_b == truth
    return PairedAccuracy(int(pred_a.size), int(ra.sum()), int(rb.sum()),
                          tuple(ids[i] for i in np.flatnonzero(ra & ~rb)),
                          tuple(ids[i] for i in np.flatnonzero(~ra & rb)))
