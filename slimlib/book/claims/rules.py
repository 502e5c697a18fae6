"""The rules of evidence: one verdict vocabulary and one policy for every claim of the book.

Both the paper's claims (:mod:`slimlib.book.claims`, chapter 1) and the robustness comparisons
(:mod:`slimlib.book.robustness.chapter`, chapter 10) are judged here, so a verdict means the same
thing on every page (``docs/claims.md``).

A claim is *about* a :class:`Scope`: a kind of model (RS foundation models, ImageNet CV
foundation models, a regular/slimmable pair of one architecture, or an architecture's compute
alone), a compute budget and a kind of data. :func:`judge` gives

* :data:`HOLDS` / :data:`FAILS` only when this build ran models of that kind, pretrained by
  whoever the kind requires (:func:`pretrained_by`: their authors, slimlib's miniature recipe,
  or nobody), at or below the budget, on that kind of data; and only when the interval decides
  the paper's criterion (:func:`decide`);
* otherwise :data:`NOT_TESTABLE`, with the reason, and an **indication**: what the partial
  evidence (stand-in models, a too-wide interval) shows, labelled as such. Indications are never
  counted (:data:`COUNTED`).

A verdict can hold only when the displayed statistic meets the displayed criterion: the
statistic :func:`judge` is given is the one shown, and :func:`decide` never lets an interval
alone carry a point that fails.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from slimlib.models.entry import AUTHORS, NOBODY, SLIMLIB

__all__ = ["HOLDS", "FAILS", "NOT_TESTABLE", "VERDICTS", "COUNTED", "AUTHORS", "SLIMLIB",
           "NOBODY", "RS_FM", "CV_FM", "PAIR", "ARCHITECTURE", "RS_DATA", "IMAGENET_DATA",
           "WITHIN", "MEETS", "Scope", "Criterion", "Ruling", "pretrained_by", "data_kind",
           "out_of_scope", "decide", "judge", "scoreboard"]

#: The verdicts. Only the first two are counted; "not testable here" always says why.
HOLDS, FAILS, NOT_TESTABLE = "holds", "does not hold", "not testable here"
VERDICTS = (HOLDS, FAILS, NOT_TESTABLE)
COUNTED = (HOLDS, FAILS)

#: Who pretrained a model (:func:`pretrained_by`; defined with the registry's metadata).

#: Kinds of model a claim can be about, and who must have pretrained them for a verdict.
RS_FM = "RS foundation models"
CV_FM = "ImageNet CV foundation models"
PAIR = "a regular/slimmable pair of one architecture"
ARCHITECTURE = "the architectures' compute (no weights needed)"
_KIND_NEEDS = {RS_FM: ("rs", (AUTHORS,)), CV_FM: ("cv", (AUTHORS,)),
               PAIR: (None, (AUTHORS, SLIMLIB)), ARCHITECTURE: (None, None)}

#: Kinds of data.
RS_DATA, IMAGENET_DATA = "remote-sensing images", "ImageNet natural images"

#: Criterion modes: the claim states a bound the statistic must lie ``WITHIN``; or this build's
#: model is compared with the spread of the paper's models and ``MEETS`` it.
WITHIN, MEETS = "within", "meets"


@dataclass(frozen=True)
class Scope:
    """What a claim is about: a model kind, a kind of data (``None``: any) and a compute budget
    (the largest relative compute the claim speaks of; ``None``: any)."""

    kind: str
    data: str | None = None
    budget: float | None = None
    #: the specific architectures the claim speaks of (``None``: any model of the kind)
    models: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KIND_NEEDS:
            raise ValueError(f"unknown model kind {self.kind!r}; use one of {list(_KIND_NEEDS)}")


@dataclass(frozen=True)
class Criterion:
    """The paper's criterion: the statistic lies in ``[lo, hi]`` (``±inf`` for one-sided
    claims), read in ``mode`` (:data:`WITHIN` or :data:`MEETS`); ``text`` is what is shown;
    ``strict``: the bounds themselves fail (a claim of "> 0" is not met by 0)."""

    lo: float
    hi: float
    mode: str = WITHIN
    text: str = ""
    max_width: float | None = None
    strict: bool = False

    def __post_init__(self) -> None:
        if self.mode not in (WITHIN, MEETS):
            raise ValueError(f"criterion mode must be {WITHIN!r} or {MEETS!r}, not {self.mode!r}")
        if self.lo > self.hi:
            raise ValueError(f"criterion range [{self.lo}, {self.hi}] is empty")

    def passes(self, value: float) -> bool:
        """Whether a point value meets the criterion (``strict``: the bounds are excluded,
        as in "> 0")."""
        if self.strict:
            return bool(self.lo < value < self.hi)
        return bool(self.lo <= value <= self.hi)

    def misses(self, lo: float, hi: float) -> bool:
        """Whether no value of ``[lo, hi]`` meets the criterion."""
        if self.strict:
            return bool(hi <= self.lo or lo >= self.hi)
        return bool(hi < self.lo or lo > self.hi)

    def __str__(self) -> str:
        if self.text:
            return self.text
        if math.isinf(self.lo):
            return f"≤ {self.hi:.3g}"
        if math.isinf(self.hi):
            return f"> {self.lo:.3g}"
        return f"{self.lo:.3g}–{self.hi:.3g}"


@dataclass(frozen=True)
class Ruling:
    """A verdict, why, and (for anything not counted) the indication the partial evidence gives."""

    verdict: str
    why: str
    indication: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {self.verdict!r}")

    @property
    def counted(self) -> bool:
        return self.verdict in COUNTED


def pretrained_by(model: str, *, pretrained: bool = True) -> str:
    """Who pretrained ``model``: :data:`AUTHORS` (published weights; the registry entry's
    ``pretrained_by``), :data:`SLIMLIB` (slimlib's embedded miniatures) or :data:`NOBODY`
    (``pretrained=False``: random weights)."""
    if not pretrained:
        return NOBODY
    from slimlib.models import registry
    from slimlib.models.entry import registered

    spec = registry.spec(model)          # populates the registry; ValueError if unknown
    entry = registered().get(model)
    if entry is None or spec.family == "embedded":
        return SLIMLIB
    return entry.pretrained_by


def data_kind(dataset: str) -> str:
    """:data:`IMAGENET_DATA` for ImageNet subsets, :data:`RS_DATA` for remote-sensing data,
    else a description (CIFAR-10 is natural images but not ImageNet)."""
    name = dataset.lower()
    if name.startswith("imagenet"):
        return IMAGENET_DATA
    if name.startswith("cifar"):
        return "CIFAR natural images (not ImageNet)"
    if name.startswith("synthetic"):
        return "synthetic images"
    return RS_DATA


def out_of_scope(scope: Scope, *, models: Iterable[str], datasets: Iterable[str] = (),
                 reached: float | None = None, pretrained: bool = True,
                 families: dict[str, str] | None = None,
                 makers: dict[str, str] | None = None) -> str | None:
    """Why this build's evidence is not of the kind ``scope`` is about, or ``None`` if it is.

    Args:
        scope: what the claim is about.
        models: the models the statistic was computed on.
        datasets: the datasets it was computed on.
        reached: the smallest relative compute those runs reached.
        pretrained: whether the profile loads pretrained weights.
        families, makers: model → registry family / :func:`pretrained_by`, for models that
            are not registered (tests); default looked up in the registry.
    """
    family, need = _KIND_NEEDS[scope.kind]
    models = list(models)
    if scope.models is not None and not set(scope.models) & set(models):
        return (f"the claim is about {', '.join(scope.models)}; this build ran "
                f"{', '.join(models) or 'none of them'}, other architectures (stand-ins)")
    if need is not None:
        if not models:
            return f"this build ran no models for a claim about {scope.kind}"
        if not pretrained:
            return "this profile uses random weights (a pipeline check): nothing was pretrained"
        from slimlib.models import registry

        who = {m: (makers or {}).get(m) or pretrained_by(m) for m in models}
        fam = {m: (families or {}).get(m) or registry.spec(m).family for m in models}
        wrong = [m for m in models if (family is not None and fam[m] != family)
                 or who[m] not in need]
        if wrong:
            return (f"the claim is about {scope.kind}; {', '.join(wrong)} "
                    f"({'; '.join(sorted({f'pretrained by {who[m]}' for m in wrong}))}) "
                    "are stand-ins, not models of that kind")
    datasets = list(datasets)
    if scope.data is not None:
        other = sorted({d for d in datasets if data_kind(d) != scope.data})
        if not datasets or other:
            return (f"the claim is about {scope.data}; this build ran it on "
                    f"{', '.join(other) or 'no data'} ({data_kind(other[0]) if other else '—'})")
    if scope.budget is not None:
        if reached is None or not math.isfinite(reached):
            return "this build reports no compute for these runs"
        if reached > scope.budget + 1e-12:
            return (f"the claim is about ≤ {scope.budget:.1%} of compute; these models cannot go "
                    f"below {reached:.1%} (their unslimmed embeddings and norms)")
    return None


def decide(value: float, lo: float, hi: float, criterion: Criterion) -> tuple[str, str]:
    """The verdict the interval ``[lo, hi]`` around ``value`` gives on ``criterion``, and why.

    * :data:`WITHIN` (the claim bounds the statistic): *holds* when the whole interval lies in
      the criterion's range, *does not hold* when the whole interval lies outside it.
    * :data:`MEETS` (this build's model against the paper's models' spread): *holds* when the
      point lies in the range (and the interval is no wider than ``max_width``), *does not
      hold* when the interval misses the range.

    Otherwise (the interval straddles the criterion, or is too wide, or is missing) the
    verdict is *not testable here*: this build's test images cannot decide it.
    """
    if not math.isfinite(value):
        return NOT_TESTABLE, "no statistic"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return NOT_TESTABLE, "no interval for the statistic"
    outside = criterion.misses(lo, hi)
    if lo == hi:                          # an exact statistic (nothing random)
        if not criterion.passes(value):
            return FAILS, f"{value:.3f} (exact) is outside {criterion}"
        return HOLDS, f"{value:.3f} (exact) meets {criterion}"
    if outside:
        return FAILS, f"the interval [{lo:.3f}, {hi:.3f}] misses {criterion}"
    width = hi - lo
    if criterion.max_width is not None and width > criterion.max_width:
        return NOT_TESTABLE, (f"the interval [{lo:.3f}, {hi:.3f}] is wider than "
                              f"{criterion.max_width:.3g}: too wide to decide")
    if criterion.mode == WITHIN:
        inside = criterion.passes(lo) and criterion.passes(hi)
    else:
        inside = criterion.passes(value)
    if inside:
        return HOLDS, f"{value:.3f} [{lo:.3f}, {hi:.3f}] meets {criterion}"
    return NOT_TESTABLE, (f"the interval [{lo:.3f}, {hi:.3f}] straddles an edge of the "
                          f"criterion ({criterion}): this build's test images cannot decide it")


def judge(value: float, lo: float, hi: float, criterion: Criterion, *,
          scope: Scope | None = None, models: Iterable[str] = (),
          datasets: Iterable[str] = (), reached: float | None = None, pretrained: bool = True,
          untestable: str | None = None, detail: str = "",
          families: dict[str, str] | None = None,
          makers: dict[str, str] | None = None) -> Ruling:
    """The one policy: scope first (:func:`out_of_scope`), then the criterion (:func:`decide`).

    ``untestable``: a reason the caller already knows (e.g. no georeferenced tiles); it makes
    the verdict *not testable here*. ``detail`` is appended to the reason (what the statistic
    was computed on). A statistic that exists but is not counted becomes the indication.
    """
    reason = untestable
    if reason is None and scope is not None:
        reason = out_of_scope(scope, models=models, datasets=datasets, reached=reached,
                              pretrained=pretrained, families=families, makers=makers)
    verdict, why = decide(value, lo, hi, criterion)
    shown = (f"{value:.3f} [{lo:.3f}, {hi:.3f}]" if math.isfinite(lo) and math.isfinite(hi)
             else f"{value:.3f} (no interval)") if math.isfinite(value) else ""
    where = f" ({detail})" if detail else ""
    if reason is not None:
        indication = ""
        if shown:
            side = "meets" if criterion.passes(value) else "does not meet"
            indication = (f"indication only: the stand-ins show {shown}, which {side} the "
                          f"criterion ({criterion}){where}")
        return Ruling(NOT_TESTABLE, reason, indication)
    if verdict != NOT_TESTABLE:
        return Ruling(verdict, why + where)
    indication = (f"indication only: {shown}{where}" if shown else "")
    return Ruling(NOT_TESTABLE, why, indication)


def scoreboard(verdicts: Iterable[str]) -> dict[str, int]:
    """How many verdicts hold / do not hold / are not testable (indications never count)."""
    verdicts = list(verdicts)
    unknown = sorted(set(verdicts) - set(VERDICTS))
    if unknown:
        raise ValueError(f"not verdicts: {unknown}; use one of {VERDICTS}")
    return {v: verdicts.count(v) for v in VERDICTS}
