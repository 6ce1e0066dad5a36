"""One vocabulary of expression class names, and the aliases datasets spell them with.

Every reader names its classes with :func:`canonical_class`, so that two datasets' classes
match by name (``fervid evaluate``) and an image folder named ``angry/`` or ``Anger/`` reads as
``anger``. The vocabulary: the seven basic classes, contempt, MAFW's eleven and the
micro-expression classes.
"""

from __future__ import annotations

from fervid.errors import FervidError

#: The seven basic classes (six emotions and neutral), in the order fervid lists them.
BASIC_CLASSES: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness",
                                  "surprise", "neutral")
#: MAFW's eleven: the basic seven, contempt and three compound-ish states.
MAFW_CLASSES: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness", "surprise",
                                 "contempt", "anxiety", "helplessness", "disappointment",
                                 "neutral")
#: Micro-expression classes (CASME II, SAMM, MEGC2019 composite; MMME's ``tense``).
MICRO_CLASSES: tuple[str, ...] = ("repression", "others", "negative", "positive", "tense")

#: Every canonical name.
VOCABULARY: tuple[str, ...] = tuple(dict.fromkeys((*BASIC_CLASSES, *MAFW_CLASSES,
                                                   *MICRO_CLASSES)))

#: Other spellings → canonical name (compared lower-case, with ``-``/space read as ``_``).
ALIASES: dict[str, str] = {
    "angry": "anger", "anger": "anger", "mad": "anger",
    "disgusted": "disgust", "disgust": "disgust",
    "fearful": "fear", "fear": "fear", "scared": "fear", "afraid": "fear",
    "happy": "happiness", "happiness": "happiness", "joy": "happiness",
    "sad": "sadness", "sadness": "sadness",
    "surprised": "surprise", "surprise": "surprise",
    "neutral": "neutral", "calm": "neutral",
    "contempt": "contempt", "contemptuous": "contempt",
    "anxiety": "anxiety", "anxious": "anxiety",
    "helplessness": "helplessness", "helpless": "helplessness",
    "disappointment": "disappointment", "disappointed": "disappointment",
    "repression": "repression", "repressed": "repression",
    "other": "others", "others": "others",
    "negative": "negative", "positive": "positive",
    "tense": "tense", "tension": "tense",
}


class UnknownClassError(FervidError, ValueError):
    """A class name outside fervid's vocabulary (:data:`VOCABULARY` and :data:`ALIASES`)."""


def canonical_class(name: str) -> str | None:
    """The canonical name of ``name`` (``"Angry"`` → ``"anger"``), or None if unknown."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    return ALIASES.get(key)


def require_class(name: str, where: str) -> str:
    """:func:`canonical_class`, raising :class:`UnknownClassError` naming ``where`` (a folder or
    file) when ``name`` is not in the vocabulary."""
    canonical = canonical_class(name)
    if canonical is None:
        raise UnknownClassError(
            f"{where}: unknown class name {name!r}; known names: {', '.join(VOCABULARY)} "
            f"(and spellings such as angry, happy, sad, surprised)")
    return canonical
