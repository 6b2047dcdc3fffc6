"""`product_owner_metric`: a deterministic score in [0, 1] for one Product Owner answer,
and the named parts that explain it.

Each part is in [0, 1]; the score is their weighted sum (weights below, documented in the
README). A part that does not apply (no requirement ids, no existing vision) scores 1.0, so
an answer is never punished for what the input did not ask for.
"""

from __future__ import annotations

import re

import yaml

WEIGHTS: dict[str, float] = {
    "vision_structure": 0.20,
    "requirement_coverage": 0.25,
    "review_validity": 0.20,
    "vision_consistency": 0.10,
    "length_bounds": 0.15,
    "no_repetition": 0.10,
}

VISION_WORDS = (40, 220)
REVIEW_WORDS = (20, 160)

_ID = re.compile(r"\b[A-Z][A-Z0-9]{1,9}-\d{1,5}\b")
_WORD = re.compile(r"[a-z][a-z0-9'-]+")
_SENTENCE_END = re.compile(r"[.!?](\s|$)")
_AUDIENCE = re.compile(r"\bfor\s+\w+|\b(users?|customers?|teams?|people|managers?|operators?|owners?|staff|patients?|students?|clients?)\b")
_OUTCOME = re.compile(r"\b(so that|help|helps|enable|enables|reduce|reduces|increase|increases|improve|improves|save|saves|lets?|allow|allows|goal|outcome)\b")
_VERDICT = re.compile(r"\b(approved?|accept(ed)?|changes requested|request(ing)? changes|reject(ed|s)?|needs? changes)\b")
_POINT = re.compile(r"^\s*([-*\u2022]|\d+[.)])\s+\S", re.M)
_PRIORITY = re.compile(r"\b(must|should|could|won't)\b")
_STOP = frozenset(
    "the and for with that this from into over your their they them will have has are was were been "
    "which while where when what who whom whose about across after before under above a an of to in on "
    "by at as is it its be or not but all any can our we you app apps platform tool system product".split()
)


class Score(float):
    """A float (what DSPy's optimizers sum) that also carries its parts."""

    parts: dict[str, float]

    def __new__(cls, value: float, parts: dict[str, float]):
        obj = super().__new__(cls, value)
        obj.parts = parts
        return obj

    def __reduce__(self):  # keep the parts through pickling (DSPy threads, caches)
        return (Score, (float(self), self.parts))


def requirement_ids(requirements_yaml: str) -> list[str]:
    """Ids declared in the requirements (`id:` entries), or any ID-like token when the YAML is malformed."""
    try:
        data = yaml.safe_load(requirements_yaml or "")
    except yaml.YAMLError:
        data = None
    items = data.get("requirements") if isinstance(data, dict) else data
    ids = []
    if isinstance(items, list):
        ids = [str(item["id"]) for item in items if isinstance(item, dict) and item.get("id")]
    if not ids:
        ids = _ID.findall(requirements_yaml or "")
    return list(dict.fromkeys(ids))


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall((text or "").lower()) if len(w) >= 4 and w not in _STOP]


def _within(n: int, low: int, high: int) -> float:
    """1 inside [low, high]; falls linearly to 0 at low/2 and at 2*high."""
    if low <= n <= high:
        return 1.0
    if n < low:
        return max(0.0, (n - low / 2) / (low / 2))
    return max(0.0, 1 - (n - high) / high)


def vision_structure(concept: str, vision: str) -> float:
    text = vision.lower()
    checks = [
        len(_SENTENCE_END.findall(vision)) >= 2,
        bool(_AUDIENCE.search(text)),
        bool(_OUTCOME.search(text)),
        bool(set(content_words(concept)) & set(content_words(vision))),
    ]
    return sum(checks) / len(checks)


def _cites(requirement_id: str, text: str) -> bool:
    """Whole-id match: INV-12 does not cite INV-1."""
    return re.search(rf"(?<![\w-]){re.escape(requirement_id)}(?![\w-])", text, re.I) is not None


def requirement_coverage(ids: list[str], vision: str, review: str) -> float:
    if not ids:
        return 1.0
    text = f"{vision}\n{review}"
    return sum(_cites(i, text) for i in ids) / len(ids)


def review_validity(ids: list[str], review: str) -> float:
    text = review.lower()
    points = len(_POINT.findall(review)) or len(_SENTENCE_END.findall(review))
    grounded = any(_cites(i, review) for i in ids) or bool(_PRIORITY.search(text))
    return 0.5 * bool(_VERDICT.search(text)) + 0.25 * (points >= 2) + 0.25 * grounded


def vision_consistency(existing_vision: str, vision: str) -> float:
    previous = list(dict.fromkeys(content_words(existing_vision)))[:12]
    if not previous:
        return 1.0
    kept = len(set(previous) & set(content_words(vision))) / len(previous)
    return min(1.0, kept / 0.3)  # carrying over 30% of the old vision's key words is enough


def length_bounds(vision: str, review: str) -> float:
    return 0.5 * _within(len(vision.split()), *VISION_WORDS) + 0.5 * _within(len(review.split()), *REVIEW_WORDS)


def no_repetition(vision: str, review: str) -> float:
    words = f"{vision}\n{review}".lower().split()
    trigrams = list(zip(words, words[1:], words[2:]))
    if not trigrams:
        return 0.0
    distinct = len(set(trigrams)) / len(trigrams)
    return min(1.0, max(0.0, (distinct - 0.5) / 0.4))  # >= 90% distinct trigrams is full marks


def score_product_owner(
    concept: str, requirements_yaml: str, existing_vision: str, product_vision: str, product_owner_review: str
) -> Score:
    vision, review = (product_vision or "").strip(), (product_owner_review or "").strip()
    ids = requirement_ids(requirements_yaml)
    parts = {
        "vision_structure": vision_structure(concept, vision),
        "requirement_coverage": requirement_coverage(ids, vision, review),
        "review_validity": review_validity(ids, review),
        "vision_consistency": vision_consistency(existing_vision, vision) if vision else 0.0,
        "length_bounds": length_bounds(vision, review),
        "no_repetition": no_repetition(vision, review),
    }
    parts = {k: round(v, 4) for k, v in parts.items()}
    # Rounded so that thresholds compare as users read them (0.85 is 0.85, not 0.8499999).
    return Score(round(sum(WEIGHTS[k] * v for k, v in parts.items()), 4), parts)


def _field(obj, name: str) -> str:
    value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, "")
    return value or ""


def product_owner_metric(example, prediction, trace=None) -> Score:
    """DSPy metric: `example` holds the inputs, `prediction` the two output fields."""
    return score_product_owner(
        *(_field(example, k) for k in ("concept", "requirements_yaml", "existing_vision")),
        *(_field(prediction, k) for k in ("product_vision", "product_owner_review")),
    )


# Optional, for any metric: how much each named part weighs, so that a rejection names the
# part that cost the most score (without it, the lowest part).
product_owner_metric.part_weights = WEIGHTS
