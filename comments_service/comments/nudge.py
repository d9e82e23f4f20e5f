"""The individual-reply nudge: warn (never block) before a copy-paste or generic reply is sent.

Three signals, each with the evidence shown to the author:

* **repeated**: the reply is the same as, or nearly the same as, one the author sent before
  (names and punctuation aside, and a first or last line the two share: the same greeting and
  sign-off every time is a habit, not a copy), so it could sit under anyone's comment; replies
  sent to this same reader are compared whatever their age, and named as such;
* **generic**: it is short and made only of stock words ("Thanks!", "Great point, glad you
  liked it");
* **no reference**: it is short and shares no word of substance with the reader's comment, so
  nothing in it shows the comment was read.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from comments_service.comments.render import plain_text
from comments_service.models import Comment

NEAR_IDENTICAL_SCORE = 85  # rapidfuzz ratio, 0-100, on normalised text
MAX_MATCHES = 3
GENERIC_MAX_WORDS = 8
REFERENCE_MAX_WORDS = 15
# Words a reply can be made of without saying anything about this particular comment.
STOCK_WORDS = frozenset(
    """
    a agree agreed all also and appreciate appreciated awesome big brilliant cheers comment
    comments cool dear definitely exactly excellent feedback for glad good great happy hear
    helped helpful hi hello i id indeed interesting it its just kind liked lot love loved lovely
    much my nice note of oh ok okay point post read reading really so sure that thank thanks
    thx the this to too totally very was we well what wonderful words wow yes you your youre
    """.split()
)
# Words too common to show that a reply refers to what the reader wrote.
FILLER_WORDS = STOCK_WORDS | frozenset(
    """
    about after again an any are as at be because been but by can could did do does doing
    dont from get had has have he her here him his how if in into is me more most no not now
    on one only or other our out over same she should some such than their them then there
    these they think those through up us was way were when where which while who why will
    with would
    """.split()
)
WORD_RE = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class NudgeWarning:
    """One reason to look at a reply again, with the earlier replies that resemble it."""

    kind: str  # "repeated", "generic" or "no_reference"
    message: str
    matches: tuple[Comment, ...] = field(default_factory=tuple)


def normalise(text: str, names: tuple[str, ...] = ()) -> str:
    """Lower-case ASCII words only, without the given names (a swapped name is still a copy)."""
    folded = unicodedata.normalize("NFKD", text.casefold()).encode("ascii", "ignore").decode()
    folded = folded.replace("'", "")
    words = WORD_RE.findall(folded)
    dropped = {word for name in names for word in WORD_RE.findall(name.casefold())}
    return " ".join(word for word in words if word not in dropped)


def _stems(words: list[str]) -> set[str]:
    """Content words cut to five letters: a crude stem, enough for "queues" to meet "queue"."""
    return {word[:5] for word in words if word not in FILLER_WORDS}


def _reply_text(reply: Comment) -> str:
    return plain_text(reply.html) if reply.html else reply.body


def normalised_lines(text: str, names: tuple[str, ...]) -> list[str]:
    """Each line of ``text`` normalised (:func:`normalise`), empty ones left out."""
    return [line for line in (normalise(raw, names) for raw in text.splitlines()) if line]


def without_shared_frame(new: list[str], old: list[str]) -> tuple[str, str]:
    """Two replies' words without the first line and the last line they share (a greeting, a
    sign-off), when each has more than that; what is left is what the nudge compares."""
    if len(new) > 1 and len(old) > 1 and new[0] == old[0]:
        new, old = new[1:], old[1:]
    if len(new) > 1 and len(old) > 1 and new[-1] == old[-1]:
        new, old = new[:-1], old[:-1]
    return " ".join(new), " ".join(old)


def check_reply(
    body: str, reader_comment: Comment, earlier_replies: list[Comment],
    earlier_to_reader: list[Comment] | tuple[Comment, ...] = (),
) -> list[NudgeWarning]:
    """Warnings for a reply about to be sent to ``reader_comment``; empty when it looks
    written for this reader. ``earlier_to_reader``: the author's replies to this reader's
    earlier comments (moderation/readers.py), compared however old they are."""
    warnings: list[NudgeWarning] = []
    reader_names = (reader_comment.name,)
    reply_words = normalise(body, reader_names)
    if not reply_words:
        return warnings

    to_reader = {earlier.id for earlier in earlier_to_reader}
    by_id = {earlier.id: earlier for earlier in [*earlier_replies, *earlier_to_reader]}
    scored = []
    for earlier in by_id.values():
        # Names aside on both sides: this reader's, and the author's (the earlier reply's).
        names = (*reader_names, earlier.name)
        new, old = without_shared_frame(normalised_lines(body, names),
                                        normalised_lines(_reply_text(earlier), names))
        score = fuzz.ratio(new, old, score_cutoff=NEAR_IDENTICAL_SCORE)
        if score:
            scored.append((score, earlier.id))
    found = sorted(scored, key=lambda item: (-item[0], item[1]))[:MAX_MATCHES]
    if found:
        same = any(score == 100 for score, _ in found)
        again = any(key in to_reader for _, key in found)
        warnings.append(NudgeWarning(
            "repeated",
            (f"You have sent {reader_comment.name} this same reply before." if again and same
             else f"This reply is nearly the same as one you sent {reader_comment.name} "
                  "before." if again
             else "You have sent exactly this reply before." if same
             else "This reply is nearly the same as one you have sent before.")
            + " Could you say something only this reader could receive?",
            tuple(by_id[key] for _, key in found),
        ))

    words = reply_words.split()
    if len(words) <= GENERIC_MAX_WORDS and all(word in STOCK_WORDS for word in words):
        warnings.append(NudgeWarning(
            "generic",
            "This reply is short and could answer any comment. Name or quote something the "
            "reader said, and say what it gave you.",
        ))
    elif len(words) <= REFERENCE_MAX_WORDS:
        reader_stems = _stems(normalise(reader_comment.body).split())
        if reader_stems and not reader_stems & _stems(words):
            warnings.append(NudgeWarning(
                "no_reference",
                "Nothing in this reply refers to the reader's own words yet.",
            ))
    return warnings
