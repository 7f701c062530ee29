"""Short questions with known answers, written by generators, and the check that grades a reply.

The cascade's default confidence model learns which of a small model's answers to keep from these:
arithmetic, dates, labels, extraction, facts from small tables, code output, unit conversion and
logic, each drawn at random from templates, names and numbers, with the answer computed, not typed
(more kinds, from well-known facts to little-known ones, in :mod:`._questions_more`).
:func:`check_reply` grades a reply against a reference the way the questions ask for it (a number, an
exact word, or text that must appear).
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Callable
from typing import Any

from ._answer import final_answer
from ._questions_more import MORE_KINDS

__all__ = ["CHECKS", "check_reply", "synthetic_questions"]

CHECKS = ("number", "exact", "contains")
Question = dict[str, Any]

_NAMES = ("Ava", "Ben", "Chloe", "Dev", "Elif", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kemal", "Lena",
          "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Viktor", "Wen", "Yara")
_SURNAMES = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Brennan", "Castillo", "Novak", "Haddad", "Petrov",
             "Sato", "Abara", "Keller", "Duarte", "Fischer", "Mensah", "Rahimi")
_ITEMS = (("apple", 1), ("pen", 2), ("mug", 6), ("book", 12), ("lamp", 25), ("chair", 40), ("ticket", 15),
          ("sandwich", 7), ("plant", 9), ("towel", 8))
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_CAPITALS = (("Kenya", "Nairobi"), ("Peru", "Lima"), ("Norway", "Oslo"), ("Egypt", "Cairo"), ("Japan", "Tokyo"),
             ("Chile", "Santiago"), ("Greece", "Athens"), ("Cuba", "Havana"), ("Poland", "Warsaw"),
             ("Portugal", "Lisbon"), ("Thailand", "Bangkok"), ("Ireland", "Dublin"), ("Austria", "Vienna"),
             ("Hungary", "Budapest"), ("Vietnam", "Hanoi"), ("Finland", "Helsinki"), ("Ghana", "Accra"),
             ("Iran", "Tehran"), ("Sweden", "Stockholm"), ("Denmark", "Copenhagen"), ("Morocco", "Rabat"),
             ("Nepal", "Kathmandu"), ("Mongolia", "Ulaanbaatar"), ("Uruguay", "Montevideo"),
             ("Kazakhstan", "Astana"), ("Bolivia", "Sucre"), ("Laos", "Vientiane"), ("Latvia", "Riga"),
             ("Senegal", "Dakar"), ("Zambia", "Lusaka"), ("Ecuador", "Quito"), ("Iceland", "Reykjavik"))
_SYMBOLS = (("oxygen", "O"), ("iron", "Fe"), ("gold", "Au"), ("sodium", "Na"), ("potassium", "K"),
            ("silver", "Ag"), ("carbon", "C"), ("helium", "He"), ("lead", "Pb"), ("tin", "Sn"), ("copper", "Cu"),
            ("mercury", "Hg"), ("tungsten", "W"), ("neon", "Ne"), ("zinc", "Zn"), ("calcium", "Ca"))
_LEGS = (("spider", 8), ("ant", 6), ("dog", 4), ("chicken", 2), ("octopus", 8), ("horse", 4), ("beetle", 6),
         ("crab", 10), ("kangaroo", 2), ("cat", 4))
_UNITS = (("feet", "yards", 3), ("inches", "feet", 12), ("minutes", "hours", 60), ("seconds", "minutes", 60),
          ("centimetres", "metres", 100), ("grams", "kilograms", 1000), ("millilitres", "litres", 1000),
          ("hours", "days", 24), ("days", "weeks", 7), ("months", "years", 12))
_POSITIVE = ("The battery lasts all day and the screen is gorgeous.",
             "Best pizza I have had in years, friendly staff too.",
             "Setup took two minutes and it works flawlessly.", "I would happily buy this kettle again.",
             "The hotel room was spotless and the view was stunning.", "Great value, sturdy and comfortable.")
_NEGATIVE = ("The zipper broke after one week.", "Cold food, rude waiter, and we waited an hour.",
             "It stopped charging on day three and support never replied.", "Flimsy, noisy and overpriced.",
             "The package arrived crushed and half the parts were missing.",
             "Worst customer service I have dealt with.")
_NEUTRAL = ("The parcel arrived on Tuesday.", "It is a blue backpack with two pockets.",
            "The store opens at nine.",
            "The manual is printed in four languages.", "I ordered the medium size.", "The train left platform two.")
_INTENTS = {"check_balance": ("How much money is left in my savings account?", "What's my current balance?",
                              "Can you tell me what I have in checking right now?"),
            "report_lost_card": ("I can't find my debit card anywhere.", "My credit card was stolen last night.",
                                 "I think I left my card at a cafe and it's gone."),
            "transfer_money": ("Send 50 dollars to my sister's account.", "Move 200 from checking to savings please.",
                               "I need to wire money to my landlord."),
            "open_account": ("I'd like to start a new savings account.", "How do I sign up for a checking account?",
                             "Can I open an account for my son?")}
_YES_NO = (("Is a mountain taller than a house?", "yes"), ("Can a fish climb a ladder to fetch the mail?", "no"),
           ("Is a week longer than a day?", "yes"), ("Do trees grow taller in one second than in one year?", "no"),
           ("Can you fit an elephant inside a teacup?", "no"), ("Is the sun hotter than a candle flame?", "yes"),
           ("Does a triangle have four sides?", "no"), ("Is a kilometre longer than a metre?", "yes"),
           ("Can a person read a book while fully asleep?", "no"), ("Is water wet?", "yes"),
           ("Does a bicycle usually have two wheels?", "yes"), ("Can a cat speak fluent French?", "no"))


def _arithmetic(r: random.Random) -> Question:
    a, b, c = r.randint(2, 60), r.randint(2, 60), r.randint(2, 9)
    kind = r.randrange(4)
    if kind == 0:
        return {"prompt": f"What is {a} + {b} + {c}? Reply with just the number.", "answer": str(a + b + c)}
    if kind == 1:
        return {"prompt": f"What is {a} times {c}? Reply with just the number.", "answer": str(a * c)}
    if kind == 2:
        big = a + b
        return {"prompt": f"What is {big} minus {b}? Reply with just the number.", "answer": str(a)}
    return {"prompt": f"Compute ({a} + {b}) * {c}. Reply with just the number.", "answer": str((a + b) * c)}


def _word_problem(r: random.Random) -> Question:
    name = r.choice(_NAMES)
    (item, price), (other, other_price) = r.sample(_ITEMS, 2)
    n, m = r.randint(2, 6), r.randint(1, 4)
    if r.random() < 0.5:
        return {"prompt": f"A {item} costs ${price} and a {other} costs ${other_price}. {name} buys {n} {item}s and "
                          f"{m} {other}s. How many dollars does {name} spend? End your reply with the final number.",
                "answer": str(n * price + m * other_price)}
    pay = (n * price // 10 + 1) * 10 + 10
    return {"prompt": f"{name} buys {n} {item}s at ${price} each and pays with ${pay}. How much change, in dollars, "
                      f"does {name} get? End your reply with the final number.", "answer": str(pay - n * price)}


def _dates(r: random.Random) -> Question:
    kind = r.randrange(3)
    if kind == 0:
        day, shift = r.randrange(7), r.randint(2, 30)
        later = r.random() < 0.5
        target = (day + shift) % 7 if later else (day - shift) % 7
        when = f"in {shift} days" if later else f"{shift} days ago"
        verb = "will it be" if later else "was it"
        return {"prompt": f"If today is {_DAYS[day]}, what day of the week {verb} {when}? Answer with the day name "
                          "only.", "answer": _DAYS[target], "check": "exact"}
    if kind == 1:
        month, shift = r.randrange(12), r.randint(2, 20)
        return {"prompt": f"What month is it {shift} months after {_MONTHS[month]}? Answer with the month name only.",
                "answer": _MONTHS[(month + shift) % 12], "check": "exact"}
    start = dt.date(2023, r.randint(1, 12), r.randint(1, 28))
    days = r.randint(3, 60)
    end = start + dt.timedelta(days=days)
    return {"prompt": f"How many days are there from {_MONTHS[start.month - 1]} {start.day}, {start.year} to "
                      f"{_MONTHS[end.month - 1]} {end.day}, {end.year}? Answer with just the number.",
            "answer": str(days)}


def _labels(r: random.Random) -> Question:
    if r.random() < 0.5:
        label, pool = r.choice((("positive", _POSITIVE), ("negative", _NEGATIVE), ("neutral", _NEUTRAL)))
        return {"prompt": "Classify the sentiment of this text as positive, negative, or neutral. Reply with one "
                          f"word.\n\nText: \"{r.choice(pool)}\"", "answer": label, "check": "exact"}
    intent = r.choice(sorted(_INTENTS))
    labels = ", ".join(sorted(_INTENTS))
    return {"prompt": f"Which intent does this bank customer's message have: {labels}? Reply with the label only.\n\n"
                      f"Message: \"{r.choice(_INTENTS[intent])}\"", "answer": intent, "check": "exact"}


def _extraction(r: random.Random) -> Question:
    first, last = r.choice(_NAMES), r.choice(_SURNAMES)
    kind = r.randrange(3)
    if kind == 0:
        email = f"{first.lower()}.{last.lower()}@{r.choice(('mail.test', 'example.net', 'corp.test'))}"
        return {"prompt": "Which email address is in this note? Reply with the address only.\n\nNote: \"Please send "
                          f"the signed form to {email} by Thursday, thanks.\"", "answer": email, "check": "contains"}
    if kind == 1:
        order = r.randint(10000, 99999)
        return {"prompt": "What is the order number in this message? Reply with the number only.\n\nMessage: "
                          f"\"Hi, this is {first}. My order {order} arrived without the charger.\"",
                "answer": str(order)}
    city = r.choice(_CAPITALS)[1]
    return {"prompt": f"Who is moving in this sentence? Reply with the full name only.\n\nSentence: \"Next spring, "
                      f"{first} {last} is moving to {city} for a new job.\"", "answer": f"{first} {last}",
            "check": "contains"}


def _facts(r: random.Random) -> Question:
    kind = r.randrange(3)
    if kind == 0:
        country, capital = r.choice(_CAPITALS)
        return {"prompt": f"What is the capital of {country}? Answer with the city name only.", "answer": capital,
                "check": "contains"}
    if kind == 1:
        element, symbol = r.choice(_SYMBOLS)
        return {"prompt": f"What is the chemical symbol for {element}? Answer with the symbol only.",
                "answer": symbol, "check": "exact"}
    animal, legs = r.choice(_LEGS)
    return {"prompt": f"How many legs does a {animal} have? Answer with just the number.", "answer": str(legs)}


def _code(r: random.Random) -> Question:
    a, b, n = r.randint(1, 9), r.randint(1, 9), r.randint(2, 6)
    word = r.choice(("banana", "rocket", "pencil", "garden", "yellow", "kitten"))
    programs: tuple[tuple[str, Any], ...] = (
        (f"x = {a}\ny = {b}\nx = x + y\nprint(x * 2)", (a + b) * 2),
        (f"print(len(\"{word}\"))", len(word)),
        (f"total = 0\nfor i in range({n}):\n    total += i\nprint(total)", sum(range(n))),
        (f"items = [{a}, {b}, {n}]\nprint(max(items) - min(items))", max(a, b, n) - min(a, b, n)),
        (f"print(\"{word}\"[{n - 2}])", word[n - 2]),
        (f"print({a * n} // {n})", a),
    )
    code, out = r.choice(programs)
    return {"prompt": f"What does this Python code print? Reply with the output only.\n\n```python\n{code}\n```",
            "answer": str(out), "check": "number" if isinstance(out, int) else "exact"}


def _units(r: random.Random) -> Question:
    small, big, factor = r.choice(_UNITS)
    n = r.randint(2, 12)
    if r.random() < 0.6:
        return {"prompt": f"How many {small} are in {n} {big}? Answer with just the number.", "answer": str(n * factor)}
    return {"prompt": f"How many {big} are {n * factor} {small}? Answer with just the number.", "answer": str(n)}


def _logic(r: random.Random) -> Question:
    kind = r.randrange(3)
    if kind == 0:
        a, b, c = r.sample(_NAMES, 3)
        adjective, ask, answer = r.choice((("taller", "shortest", c), ("taller", "tallest", a),
                                           ("older", "youngest", c), ("older", "oldest", a)))
        return {"prompt": f"{a} is {adjective} than {b}. {b} is {adjective} than {c}. Who is the {ask}? Answer with "
                          "the name only.", "answer": answer, "check": "contains"}
    if kind == 1:
        question, answer = r.choice(_YES_NO)
        return {"prompt": f"{question} Answer yes or no.", "answer": answer, "check": "exact"}
    a, b = r.sample(_NAMES, 2)
    relation, answer = r.choice((("mother", "grandmother"), ("father", "grandfather")))
    return {"prompt": f"{a} is the {relation} of {b}. {b} is the {relation} of Kim. What is {a} to Kim? Answer with "
                      "one word.", "answer": answer, "check": "contains"}


_KINDS: dict[str, Callable[[random.Random], Question]] = {
    "arithmetic": _arithmetic, "word_problem": _word_problem, "dates": _dates, "labels": _labels,
    "extraction": _extraction, "facts": _facts, "code_output": _code, "units": _units, "logic": _logic,
    **MORE_KINDS,  # after the first kinds, so their questions for a seed stay the same
}


def synthetic_questions(per_kind: int = 100, seed: int = 0) -> list[Question]:
    """``per_kind`` distinct questions of each kind: ``prompt``, ``answer``, ``check``, ``category``."""
    r = random.Random(seed)
    out: list[Question] = []
    for kind, make in _KINDS.items():
        seen: set[str] = set()
        for _ in range(per_kind * 20):
            if len(seen) >= per_kind:
                break
            q = make(r)
            if q["prompt"] in seen:
                continue
            seen.add(q["prompt"])
            out.append({"check": "number", **q, "category": kind})
    return out


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[\w@.+-]+", text.lower().replace("_", "_"))).strip(". ")


def check_reply(reply: str, answer: str, check: str) -> bool:
    """Whether ``reply`` gives ``answer``: ``number`` compares the reply's final number, ``exact`` wants
    the answer as the reply (or its opening words), ``contains`` wants it anywhere in the reply."""
    if check not in CHECKS:
        raise ValueError(f"unknown check {check!r}; known: {', '.join(CHECKS)}")
    if check == "number":
        got = final_answer(reply)
        try:
            return got is not None and abs(got - float(answer.replace(",", ""))) < 1e-6
        except ValueError:
            return False
    said, want = _norm(reply), _norm(answer)
    if check == "contains":
        return bool(want) and want in said
    return said == want or said.startswith(want + " ")
