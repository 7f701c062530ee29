"""The word lists behind the rule-based rewrites: filler openers, wordy phrases, thanks, hedges.

Kept apart from the rewriting code so the lists can be read and reviewed on their own. Every
entry is lowercase words separated by single spaces; matching ignores case.
"""

from __future__ import annotations

__all__ = ["HEDGES", "INSTRUCTION_VERBS", "OPENERS", "PLEASANTRY_OPENERS", "PLEASANTRY_WORDS", "POLITE_OPENERS",
           "WORDY"]


def _words(text: str) -> list[str]:
    return text.split()

# Verbs that make a sentence an instruction; "can you"/"please" are dropped only before one.
INSTRUCTION_VERBS = frozenset(_words("""
add analyse analyze answer assess build calculate categorize check choose classify combine compare
compile compose condense convert correct count create debug decide define describe design detect
determine develop draft edit estimate evaluate explain extract fill find fix format generate give
help highlight identify implement improve include infer keep label list look make map mark
mention name note offer organize outline paraphrase pick plan point predict prepare produce
proofread provide rank rate read recommend reformat refactor reply report respond restate return
review revise rewrite score select share shorten show simplify sort spell state suggest
summarise summarize tag tell test think transform translate turn update use verify walk write
"""))

# Sentence openers that wrap an instruction and can go entirely (longest first when matching).
OPENERS = tuple(sorted((
    "i would like you to", "i'd like you to", "i want you to", "i need you to",
    "i would like for you to", "i would love for you to", "i'd love for you to",
    "i would love it if you could", "i'd love it if you could",
    "i would like to ask you to", "i'd like to ask you to", "i am asking you to",
    "i was wondering if you could", "i was hoping you could", "i wonder if you could",
    "it would be great if you could", "it would be helpful if you could",
    "it would be nice if you could", "it would be awesome if you could",
    "i would appreciate it if you could", "i'd appreciate it if you could",
    "i would be grateful if you could", "i'd be grateful if you could",
    "make sure to", "make sure that you", "be sure to", "please make sure to",
    "please be sure to", "please", "kindly", "your task is to", "your job is to",
    "it is important to note that", "please note that", "note that",
), key=lambda p: -len(p)))

# Openers that ask a question ("can you ...?") and are dropped only before an instruction verb.
POLITE_OPENERS = tuple(sorted((
    "could you please", "can you please", "would you please", "could you kindly",
    "would you kindly", "could you", "can you", "would you",
), key=lambda p: -len(p)))

# Wordy phrases and their plain equivalents, matched anywhere in prose.
WORDY: dict[str, str] = {
    "in order to": "to",
    "due to the fact that": "because",
    "owing to the fact that": "because",
    "in spite of the fact that": "although",
    "despite the fact that": "although",
    "for the purpose of": "for",
    "in the event that": "if",
    "at this point in time": "now",
    "at the present time": "now",
    "a large number of": "many",
    "a great number of": "many",
    "the vast majority of": "most",
    "has the ability to": "can",
    "have the ability to": "can",
    "is able to": "can",
    "are able to": "can",
    "with the exception of": "except",
    "prior to": "before",
    "each and every": "every",
    "in close proximity to": "near",
    "at all times": "always",
    "on a daily basis": "daily",
    "on a regular basis": "regularly",
    "in a timely manner": "promptly",
    "as a matter of fact": "in fact",
    "until such time as": "until",
    "in the near future": "soon",
}

# Pleasantries: a sentence that opens with one of these and holds only words of PLEASANTRY_WORDS
# ("Thank you so much in advance for your help!", "I hope you are doing well today.", "Hi there!")
# is dropped from instructions when something else remains.
PLEASANTRY_OPENERS = (("thank",), ("thanks",), ("many", "thanks"), ("i", "hope"), ("hope",), ("hello",),
                      ("hi",), ("hey",), ("greetings",), ("good", "morning"), ("good", "afternoon"),
                      ("good", "evening"))
PLEASANTRY_WORDS = frozenset(_words("""
thank thanks you so very much in advance for your help time and effort i really appreciate it a lot again
kindly many all hope are doing well today this message finds find is hello hi hey there greetings good
morning afternoon evening dear assistant we everyone folks
"""))

# Intensifiers and hedges ("balanced" and "aggressive" drop them before another word).
HEDGES = frozenset((
    "basically", "actually", "really", "very", "quite", "literally", "essentially",
    "totally", "absolutely", "truly", "simply",
))
