"""Answering the question asked: a fact of the sources, "I don't have that detail", or the guide.

The model's FactMatcher (components/fact_matcher.py) ranks the catalogue's
facts for each message; this module decides what the reply is, the same way
for the bot's actions, customer care's look-up and the benchmark:

- a bare aspect question («كم الرسوم؟», "what are the requirements?") gets
  that aspect's block, whole, as before, unless it asks a figure that the
  block's facts do not give (then as below);
- a "how do I …" or "what is …" message, or one that only names the
  service, gets the guide, unless it is nearer to a fact's questions than to
  the service's own examples («كيف أطبعها؟») and that fact clearly answers;
- any other question whose best fact of the service scores at least
  ANSWER_SCORE among the service's classes (its facts, and the questions the
  sources do not answer, musaed/not_in_sources.yml) gets that fact (a yes/no
  question: yes or no first, from the nearest question's answer in the
  catalogue);
- and one with no such fact, or asking for a figure («كم الغرامة؟», "how many
  years?") that its fact does not give, gets "I don't have that detail", with
  where to ask (and, in the second case, what the sources do say): never a
  figure or rule of our own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
import yaml

from musaed.arabic import normalize
from musaed.catalogue import Catalogue, Fact

# A fact whose probability among its service's facts (components/fact_matcher.py,
# `in_service`) reaches this answers the question. Set by five-fold cross-validation
# on the catalogue's own questions against questions about the services that the
# sources do not answer (tests/answers/dev_unknowns.yml; `python -m bench.fact_bar`),
# never on a blind split: the bar with the most found and declined together. 0.7 before the
# matcher learnt the questions the sources do not answer (musaed/not_in_sources.yml): that
# class now takes a near fact's probability, and the best bar moved to 0.5 (bench/NOTES.md).
ANSWER_SCORE = 0.5
# With no service named or in context the fact also chooses the service: its probability
# among all facts must reach this.
ANSWER_SCORE_ANY = 0.5
# And this when the message was read, without certainty, as out of scope or another
# government service: above every such message of the three out-of-domain splits
# (tests/ood/; the highest was 0.72, «خرائط قوقل أقدر أستخدمها بدون انترنت؟»).
ANSWER_SCORE_UNSURE = 0.85
# A "how do I …" question read as the service's own request this surely («كيف أفعّل الهوية بعد
# ما استلمتها؟», 1.0) wants the guide, whatever fact is near; below, a clear fact may answer it.
SURE_OF_SERVICE = 0.95
# For the yes/no of a fact's nearest question, how the two similarities are weighed:
# letters catch the service's own words, the sentence vector the same question in other words.
GRAMS_WEIGHT = 0.5


def blend(grams: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    return GRAMS_WEIGHT * grams + (1 - GRAMS_WEIGHT) * np.maximum(vectors, 0.0)


@dataclass(frozen=True)
class Row:
    """One text the matcher compares a message with: a question people ask for a fact, or the fact itself."""

    service: str
    fact: str
    text: str
    answer: Optional[str]  # "yes" | "no" | None


# Questions about a service that the sources do not answer, written for training (not a test
# set): the matcher reads them as one more class of each service, NOT_IN_SOURCES, which takes
# its share of the service's probability and so keeps a fact near them under the bar.
NOT_IN_SOURCES_PATH = Path(__file__).with_name("not_in_sources.yml")
NOT_IN_SOURCES = "not_in_sources"


def fact_rows(cat: Catalogue, not_in_sources: bool = True) -> List[Row]:
    """The matcher's rows: each fact's questions and its own text in both languages, and
    each service's questions that the sources do not answer."""
    from musaed import catalogue

    english = catalogue.load("en")
    rows: List[Row] = []
    for fact in cat.facts():
        rows += [Row(fact.service, fact.id, q, a) for q, a in fact.questions]
        rows.append(Row(fact.service, fact.id, fact.text, None))
        translated = english.fact(fact.service, fact.id)
        if translated is not None and translated.text != fact.text:
            rows.append(Row(fact.service, fact.id, translated.text, None))
    if not_in_sources and NOT_IN_SOURCES_PATH.exists():
        asked = yaml.safe_load(NOT_IN_SOURCES_PATH.read_text(encoding="utf-8")) or {}
        rows += [Row(sid, NOT_IN_SOURCES, q, None) for sid, qs in asked.items() if sid in cat.services for q in qs]
    return rows


# -- what kind of message --------------------------------------------------------

# Words that open a question (normalised; a leading و or ف is dropped first).
_YES_NO_WORDS = {
    "هل", "لازم", "يلزم", "يصير", "يصلح", "ينفع", "تنفع", "اقدر", "نقدر", "يقدر", "تقدر", "ممكن", "يمديني", "يمدي",
    "يشترط", "يقبل", "تقبل", "تقبلون", "يقبلون", "يحتاج", "احتاج", "نحتاج", "يجب", "مسموح", "يسمح", "عادي",
    "do", "does", "did", "can", "could", "is", "are", "was", "will", "would", "must", "should", "have", "has", "may",
    "need", "am",
}  # fmt: skip
_OPEN_WORDS = {
    "كم", "متى", "وين", "اين", "فين", "ليش", "لماذا", "ليه", "وش", "ايش", "شو", "ماذا", "ما", "من", "مين", "اي",
    "اذا", "لو", "شلون", "كيف", "what", "when", "where", "why", "who", "which", "how", "whats", "if",
}  # fmt: skip
_ASKING_PHRASES: Tuple[str, ...] = (
    "ابي اعرف", "ابغى اعرف", "ابغي اعرف", "ودي اعرف", "اريد ان اعرف", "ابي استفسر", "i want to know", "tell me",
    "i wonder", "wondering",
)  # fmt: skip
_WORD = re.compile(r"\w+")
# Compared with normalised text: written as people type them («متى», «ابغى»), kept normalised.
_YES_NO_WORDS = {normalize(w).lower() for w in _YES_NO_WORDS}
_OPEN_WORDS = {normalize(w).lower() for w in _OPEN_WORDS}
_ASKING_PHRASES = tuple(normalize(p).lower() for p in _ASKING_PHRASES)
# "Which" inside a message («تجديد الإقامة تحت أي خدمات؟» without the mark): a question.
_WHICH = ("تحت اي", "اي قسم", "اي قائمه", "اي خيار", "اي خدمه", "اي خدمات", "under which", "in which", "which section",
          "which menu", "which option")  # fmt: skip
_WHICH_PHRASES = tuple(normalize(p).lower() for p in _WHICH)
# "X or Y?" («أجددها من الجوال ولا لازم من الموقع»): each alternative opens like a question.
_OR = re.compile(r"\s(?:ولا|والا|او|or)\s")


def _opening_words(text: str) -> List[str]:
    """The first words of `text` after any "I want to know" («ابي اعرف هل…»)."""
    norm = normalize(text).lower().strip()
    for phrase in _ASKING_PHRASES:
        if norm.startswith(phrase):
            norm = norm[len(phrase) :]
    words = _WORD.findall(norm)[:3]
    return [w[1:] if len(w) > 2 and w[0] in "وف" and w[1:] in _YES_NO_WORDS | _OPEN_WORDS else w for w in words]


_CLAUSES = re.compile(r"[،,.!؛;?؟\n]+")


def is_yes_no_question(text: str) -> bool:
    """ "هل لازم موعد؟", "do I have to…", «قدمت طلب، أقدر أتابعه؟»: a clause opened by a
    yes/no word, not "what are…"."""
    if not is_question(text):
        return False
    for clause in _CLAUSES.split(text):
        words = _opening_words(clause)
        opening = words[:2] if words and words[0] not in _OPEN_WORDS else []
        if any(w in _YES_NO_WORDS or _future_verb(w) for w in opening):
            return True
    return False


def _future_verb(word: str) -> bool:
    """A Gulf future verb («بيجيني», «بتوصل»): "will it…?" when it opens a question."""
    return len(word) >= 4 and word[0] == "ب" and word[1] in "يتن"


def names_absher(text: str) -> bool:
    """Whether the message is about Absher itself («في أبشر», "in Absher")."""
    norm = normalize(text).lower()
    return "ابشر" in norm or "absher" in norm


def is_question(text: str) -> bool:
    """Whether `text` asks something (not "ابي اجدد هويتي", which asks for the service)."""
    norm = normalize(text).lower()
    if "?" in text or "؟" in text or any(p in norm for p in _ASKING_PHRASES):
        return True
    if any(f" {p} " in f" {norm} " for p in _WHICH_PHRASES):
        return True
    alternatives = _OR.split(norm)
    if len(alternatives) > 1 and any(_opens_question(a) for a in alternatives[1:]):
        return True
    return _opens_question(text)


def _opens_question(text: str) -> bool:
    words = _opening_words(text)
    if not words:
        return False
    # "ابي" opens a request as often as a question: a question only with "?" or a yes/no word after it.
    if words[0] == "ابي":
        return len(words) > 1 and words[1] in _YES_NO_WORDS
    return words[0] in _YES_NO_WORDS | _OPEN_WORDS or any(w in _YES_NO_WORDS for w in words[1:2])


# -- the reply -------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    kind: str  # "fact" | "unknown" | "aspects" | "guide"
    fact: Optional[Fact] = None
    yes_no: Optional[str] = None  # "yes" | "no" when a yes/no question's fact says which
    aspects: Sequence[str] = ()
    # An "unknown" near a fact («كم الغرامة بالضبط؟» near "late renewal may bring fines"): said after.
    related: Optional[Fact] = None


def best_fact(ranking: Iterable[dict], service_id: Optional[str]) -> Optional[dict]:
    """The best-ranked fact of `service_id` (of any service when None)."""
    for entry in ranking or ():
        if service_id is None or entry.get("service") == service_id:
            return entry
    return None


# Words a bare aspect question is made of besides its aspect's words ("كم رسوم تجديد
# الاقامة؟"): what is left beyond them, our services' words and these asks something more.
_FILLERS = {
    "تجديد", "التجديد", "اجدد", "نجدد", "يجدد", "بدل", "طلب", "الطلب", "الخدمه", "خدمه", "في", "من", "على", "عن",
    "لل", "ل", "و", "هذي", "هذا", "هاذي", "ذي", "حق", "حقت", "تبع", "طيب", "يا", "الله", "لو", "سمحت", "renew",
    "renewal", "renewing", "the", "a", "an", "of", "for", "my", "to", "it", "this", "that", "and", "please", "service",
    "request", "in", "on", "me", "i", "you", "your", "there", "any", "ابشر", "absher", "اللي", "الي", "احتاج",
    "احتاجها", "نحتاج", "المطلوبه", "المطلوب", "الجديده", "الجديد", "new", "need", "after", "is", "are", "do",
}  # fmt: skip


def bare_aspect_question(cat: Catalogue, text: str) -> bool:
    """ "كم الرسوم؟", "what are the requirements for the iqama?": an aspect asked and nothing more."""
    known = set(_FILLERS) | _YES_NO_WORDS | _OPEN_WORDS
    for spec in [cat.covered, *cat.aspects.values()]:
        for word in spec.get("words", []):
            known.update(_WORD.findall(normalize(word).lower()))
    # What names a service: its name, its summary's words, relatives and record kinds.
    for service in cat.services.values():
        known.update(_WORD.findall(normalize(f"{service.name} {service.summary}").lower()))
    for spec in [*cat.relations.values(), *cat.record_kinds.values()]:
        for word in spec.get("words", []):
            known.update(_WORD.findall(normalize(word).lower()))
    words = _WORD.findall(normalize(text).lower())
    return all(w in known or (len(w) > 3 and w[0] in "وبلف" and w[1:] in known) for w in words)


def decide(cat: Catalogue, text: str, service_id: str, ranking: Iterable[dict], read_as_service: float = 0.0) -> Answer:
    """What to reply to `text` about `service_id`, given the model's fact ranking and how sure
    the model is that the message asks for the service itself (its intent's confidence)."""
    aspects = cat.aspects_in(text)
    if aspects and bare_aspect_question(cat, text):  # "كم الرسوم؟": the aspect, whole
        return _figure_not_given(cat, text, service_id, aspects) or Answer("aspects", aspects=aspects)
    if not aspects and (cat.asks_how(text) or asks_what_it_is(text)):
        # "كيف أجدد هويتي؟" wants the guide; «كيف أطبعها؟» a step the guide does not spell out:
        # its fact, when the question says more than the service's words and one clearly answers.
        plain = asks_the_service(best_fact(ranking, service_id), read_as_service) or bare_aspect_question(cat, text)
        specific = None if plain else clear_fact(cat, text, service_id, ranking)
        return specific or Answer("guide")
    if not is_question(text):
        return Answer("aspects", aspects=aspects) if aspects else Answer("guide")
    best = best_fact(ranking, service_id)
    if best is not None and best["in_service"] >= ANSWER_SCORE:
        fact = cat.fact(service_id, best["fact"])
        # A figure asked («كم الغرامة؟», "how many years?") that the fact does not give is not answered by it.
        if fact is not None and cat.asks_figure(text) and not gives_figure(fact):
            return Answer("unknown", related=fact)
        if fact is not None:
            yes_no = best.get("answer") if is_yes_no_question(text) else None
            return Answer("fact", fact=fact, yes_no=yes_no if yes_no in ("yes", "no") else None)
    # "أقدر أدفع الرسوم بالتقسيط؟" asks more than the sources say: not the fees block.
    return Answer("unknown")


def asks_the_service(best: Optional[dict], read_as_service: float) -> bool:
    """Whether a "how do I …" message asks for the service itself (its guide) rather than the
    fact near it: it is nearer to the service's own examples ("كيف أجدد هويتي؟") than to any
    question of that fact ("how do I show it with no internet?"); else, on a ranking without
    nearness, when the model reads the service itself at SURE_OF_SERVICE."""
    if best is not None and "near_service" in best:
        return best["near_service"] >= best["near_fact"]
    return read_as_service >= SURE_OF_SERVICE


def gives_figure(fact: Fact) -> bool:
    """Whether the fact states a number (days, ages): only such a fact answers «كم…؟»."""
    return any(ch.isdigit() for ch in fact.text)


def _figure_not_given(cat: Catalogue, text: str, service_id: str, aspects: Sequence[str]) -> Optional[Answer]:
    """ "كم رسوم تجديد الإقامة؟" where the aspect's facts give no figure (fees are paid online, no
    amount): "I don't have that detail", then what the sources do say, not the block as if it answered."""
    if not cat.asks_figure(text):
        return None
    service = cat.services[service_id]
    named = (cat.fact(service_id, f) for aspect in aspects for f in service.aspect_facts.get(aspect, ()))
    facts = [f for f in named if f is not None]
    if not facts or any(gives_figure(f) for f in facts):
        return None  # no facts: the block itself says the sources do not state it
    return Answer("unknown", related=facts[0])


def clear_fact(cat: Catalogue, text: str, service_id: str, ranking: Iterable[dict]) -> Optional[Answer]:
    """The fact of `service_id` that clearly answers (clears ANSWER_SCORE and gives any figure
    asked): for a "how do I …" question, and a yes/no question that starts tracking."""
    best = best_fact(ranking, service_id)
    if best is None or best["in_service"] < ANSWER_SCORE:
        return None
    fact = cat.fact(service_id, best["fact"])
    if fact is None or (cat.asks_figure(text) and not gives_figure(fact)):
        return None
    return Answer("fact", fact=fact)


_WHAT_IS = ("وش هي", "وش هو", "ايش هي", "ايش هو", "ما هي", "ما هو", "شو هي", "شو هو", "what is", "whats", "what's")


def asks_what_it_is(text: str) -> bool:
    """ "وش هي الهوية الرقمية؟", "what is the digital ID?": the guide says what it is."""
    norm = normalize(text).lower().strip()
    return any(norm.startswith(normalize(p)) for p in _WHAT_IS)


def decide_any(cat: Catalogue, text: str, ranking: Iterable[dict], least: float = ANSWER_SCORE_ANY) -> Optional[Answer]:
    """A question with no service named or in context: the best fact of any service, if it answers.

    The bar is higher than for a service in context (ANSWER_SCORE_ANY, or `least`): here the
    fact also chooses the service, and a question of another domain must not get one."""
    # The statement most likely asked (one source sentence may be a fact of several services).
    best = max(ranking or (), key=_statement_score, default=None)
    if best is None or _statement_score(best) < least or not is_question(text) or cat.asks_how(text):
        return None
    if cat.other_domain_in(text):  # «كم يوم تاخذ الحوالة توصل؟»: a bank's, not ours
        return None
    if cat.aspects_in(text) and bare_aspect_question(cat, text):  # a bare «كم الرسوم؟» asks which service
        return None
    answer = decide(cat, text, best["service"], [best])
    return answer if answer.kind == "fact" else None


def _statement_score(entry: dict) -> float:
    return float(entry.get("statement", entry["score"]))


def fact_text(cat: Catalogue, answer: Answer) -> str:
    """The reply for a fact: yes or no first when the question was one, then the fact."""
    assert answer.fact is not None
    fact = cat.fact(answer.fact.service, answer.fact.id) or answer.fact  # in the catalogue's language
    if answer.yes_no:
        return f"{cat.labels['answer_' + answer.yes_no]} {fact.text}"
    return fact.text


def reply_text(cat: Catalogue, service_id: str, answer: Answer) -> str:
    """The words of a "fact" or "unknown" answer (with the fact near it, if any)."""
    if answer.kind == "fact":
        return fact_text(cat, answer)
    declined = unknown_text(cat, service_id)
    if answer.related is None:
        return declined
    related = cat.fact(answer.related.service, answer.related.id) or answer.related  # in the catalogue's language
    return f"{declined}\n{cat.labels['related']} {related.text}"


def unknown_text(cat: Catalogue, service_id: str) -> str:
    return cat.labels["no_detail"].format(
        name=cat.services[service_id].name, call_centre=cat.call_centre["name"], phone=cat.call_centre["phone"]
    )
