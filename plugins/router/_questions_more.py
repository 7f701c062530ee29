"""More kinds of generated questions: multi-step arithmetic, money, calendars, topic and language
labels, extraction of phone numbers, prices and dates, well-known and little-known facts, more code,
yes/no common sense and comparisons, orderings, syllogisms, sequences and letter counts; then
percentages, word and letter operations, fields of records and JSON, comparisons of decimals,
weights and ages, Roman numerals, clock times and squares, and items of lists.

Each generator draws one question from ``r``; answers are computed or looked up in the tables here.
:mod:`._questions` appends these kinds after its own, so the first kinds' questions do not change.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any

__all__ = ["MORE_KINDS"]

Question = dict[str, Any]

_PEOPLE = ("Aiko", "Bruno", "Carmen", "Dmitri", "Esra", "Felix", "Gita", "Hana", "Ivo", "Jada", "Kofi", "Luca",
           "Maya", "Nils", "Olga", "Pablo", "Rania", "Soren", "Tomas", "Vera", "Yusuf", "Zoe")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_TOPICS = {
    "sports": ("The striker scored twice in the final minutes of the match.",
               "She finished the marathon in under three hours.",
               "The team traded its best pitcher before the playoffs.",
               "Our goalkeeper saved a penalty in the shootout."),
    "politics": ("The senate passed the budget bill late on Friday.",
                 "Voters head to the polls for the mayoral election.",
                 "The minister resigned after the vote of no confidence.",
                 "Parliament debated the new immigration law for hours."),
    "technology": ("The new phone ships with a faster chip and more memory.",
                   "The update fixes a security flaw in the web browser.",
                   "Engineers released an open-source database engine.",
                   "The laptop's battery now charges in an hour."),
    "food": ("Simmer the tomatoes with garlic and basil for twenty minutes.",
             "This bakery's sourdough has a crisp crust and a soft middle.",
             "Add a pinch of salt before whisking the eggs.", "The soup tastes better with fresh ginger."),
}
_SPAM = (("Congratulations! You won a free cruise, click here to claim now!!!", "spam"),
         ("URGENT: your account will be closed unless you send your password today.", "spam"),
         ("Cheap pills, no prescription needed, order now and save 90%.", "spam"),
         ("Earn $5000 a week from home, limited spots, reply YES.", "spam"),
         ("Hi Sam, are we still meeting for lunch on Thursday?", "not_spam"),
         ("Attached is the agenda for tomorrow's team meeting.", "not_spam"),
         ("Your library book is due back next Monday.", "not_spam"),
         ("Mom says dinner is at seven, bring the salad.", "not_spam"))
_LANGUAGES = (("Where is the train station?", "English"), ("The weather is lovely today.", "English"),
              ("Où est la gare, s'il vous plaît ?", "French"), ("J'aime beaucoup ce petit café.", "French"),
              ("¿Dónde está la biblioteca?", "Spanish"), ("Me gusta mucho la comida picante.", "Spanish"),
              ("Wo ist der Bahnhof, bitte?", "German"), ("Ich trinke morgens gern Kaffee.", "German"),
              ("Dov'è la stazione, per favore?", "Italian"), ("Mi piace molto questa città.", "Italian"))
_CITIES = ("Lisbon", "Toronto", "Nairobi", "Osaka", "Denver", "Krakow", "Seville", "Auckland", "Bergen", "Porto")
_PRODUCTS = ("headphones", "blender", "backpack", "monitor", "desk lamp", "rain jacket", "coffee grinder")
_EASY_FACTS = (("What is the largest planet in our solar system?", "Jupiter"),
               ("Which planet is closest to the Sun?", "Mercury"), ("Which planet is known as the Red Planet?", "Mars"),
               ("What is the largest ocean on Earth?", "Pacific"), ("On which continent is Brazil?", "South America"),
               ("On which continent is Kenya?", "Africa"), ("On which continent is Thailand?", "Asia"),
               ("What colour do you get by mixing blue and yellow?", "green"),
               ("What colour do you get by mixing red and white?", "pink"),
               ("What is the opposite of 'hot'?", "cold"), ("What is the opposite of 'early'?", "late"),
               ("What gas do plants take in from the air to make food?", "carbon dioxide"),
               ("Who wrote 'Romeo and Juliet'?", "Shakespeare"), ("What is the currency of Japan?", "yen"),
               ("What language is mostly spoken in Brazil?", "Portuguese"),
               ("What is the freezing point of water in degrees Celsius?", "0"),
               ("How many days are in a leap year?", "366"), ("How many continents are there?", "7"),
               ("How many sides does a hexagon have?", "6"), ("How many minutes are in an hour?", "60"),
               ("What is the capital of France?", "Paris"), ("What is the capital of Italy?", "Rome"),
               ("Which animal is known as the king of the jungle?", "lion"),
               ("What is the tallest animal in the world?", "giraffe"),
               ("What do bees make?", "honey"), ("What is the chemical formula of water?", "H2O"))
_HARD_FACTS = (("What is the capital of Bhutan?", "Thimphu"), ("What is the capital of Eritrea?", "Asmara"),
               ("What is the capital of Burkina Faso?", "Ouagadougou"),
               ("What is the capital of Kyrgyzstan?", "Bishkek"),
               ("What is the capital of Suriname?", "Paramaribo"), ("What is the capital of Malawi?", "Lilongwe"),
               ("What is the capital of Tajikistan?", "Dushanbe"), ("What is the capital of Mauritania?", "Nouakchott"),
               ("What is the capital of Namibia?", "Windhoek"), ("What is the capital of Slovenia?", "Ljubljana"),
               ("What is the chemical symbol for antimony?", "Sb"), ("What is the chemical symbol for tin?", "Sn"),
               ("What is the chemical symbol for manganese?", "Mn"), ("What is the chemical symbol for boron?", "B"),
               ("Who wrote the novel 'Middlemarch'?", "George Eliot"),
               ("Who wrote 'The Tale of Genji'?", "Murasaki"),
               ("Who painted 'The Garden of Earthly Delights'?", "Bosch"),
               ("Who composed the opera 'The Magic Flute'?", "Mozart"),
               ("Which planet has the moon Titan?", "Saturn"), ("Which planet has the moon Triton?", "Neptune"),
               ("What is the currency of Hungary?", "forint"), ("What is the currency of Vietnam?", "dong"),
               ("What is the official language of Suriname?", "Dutch"),
               ("In which country is the city of Tabriz?", "Iran"),
               ("How many bones are in the adult human body?", "206"),
               ("In which year did the Berlin Wall fall?", "1989"),
               ("In which year did the first person walk on the Moon?", "1969"),
               ("How many keys does a standard piano have?", "88"),
               ("What is the atomic number of carbon?", "6"), ("What is the atomic number of iron?", "26"))
_COMMON_SENSE = (("Can a car drive on water like a boat?", "no"), ("Is a mouse smaller than an elephant?", "yes"),
                 ("Do people usually sleep at night?", "yes"), ("Can a chair feel happy?", "no"),
                 ("Is snow cold?", "yes"), ("Does a square have three corners?", "no"),
                 ("Can a dog drive a bus?", "no"), ("Is a minute longer than an hour?", "no"),
                 ("Do fish need water to live?", "yes"), ("Can you see the stars during a cloudless night?", "yes"),
                 ("Is a feather heavier than a brick?", "no"), ("Do you need a key to open most locked doors?", "yes"),
                 ("Is Tuesday the day after Monday?", "yes"), ("Can a baby run a marathon?", "no"),
                 ("Is the ocean salty?", "yes"), ("Does ice melt when it gets warm?", "yes"),
                 ("Is it usually dark at noon on a sunny day?", "no"), ("Can you eat soup with a fork easily?", "no"),
                 ("Are there more days in a year than in a month?", "yes"), ("Is a banana blue when ripe?", "no"))
_WORDS = ("strawberry", "banana", "committee", "mississippi", "bookkeeper", "balloon", "parallel", "assessment",
          "coffee", "tomorrow", "success", "letter")


def _multi_step(r: random.Random) -> Question:
    a, b, c, d = r.randint(3, 25), r.randint(2, 12), r.randint(5, 40), r.randint(2, 9)
    kind = r.randrange(5)
    if kind == 0:
        return {"prompt": f"What is {a} * {b} + {c}? Reply with just the number.", "answer": str(a * b + c)}
    if kind == 1:
        return {"prompt": f"What is {a} * {b} - {c} * {d}? Reply with just the number.",
                "answer": str(a * b - c * d)}
    if kind == 2:
        pct, base = r.choice((10, 20, 25, 50, 75)), r.randint(2, 30) * 20
        return {"prompt": f"What is {pct}% of {base}? Reply with just the number.", "answer": str(pct * base // 100)}
    if kind == 3:
        xs = [r.randint(1, 30) for _ in range(2)]
        third = 3 * r.randint(5, 25) - sum(xs)
        if third < 1:
            third += 30
        xs.append(third)
        if sum(xs) % 3:
            xs[2] += 3 - sum(xs) % 3
        return {"prompt": f"What is the average of {xs[0]}, {xs[1]} and {xs[2]}? Reply with just the number.",
                "answer": str(sum(xs) // 3)}
    return {"prompt": f"Divide {a * d} by {d}, then add {c}. What do you get? Reply with just the number.",
            "answer": str(a + c)}


def _money(r: random.Random) -> Question:
    name = r.choice(_PEOPLE)
    kind = r.randrange(4)
    if kind == 0:
        wage, hours = r.randint(9, 30), r.randint(3, 12)
        return {"prompt": f"{name} earns ${wage} an hour and works {hours} hours. How many dollars does {name} earn? "
                          "End your reply with the final number.", "answer": str(wage * hours)}
    if kind == 1:
        people, each = r.randint(2, 6), r.randint(8, 40)
        return {"prompt": f"A dinner bill of ${people * each} is split equally among {people} friends. How many "
                          "dollars does each friend pay? End your reply with the final number.", "answer": str(each)}
    if kind == 2:
        price, off = r.randint(1, 10) * 20, r.choice((10, 20, 25, 50))
        return {"prompt": f"A jacket costs ${price}. It is on sale for {off}% off. What is the sale price in dollars? "
                          "End your reply with the final number.", "answer": str(price - price * off // 100)}
    speed, hours = r.randint(4, 15) * 5, r.randint(2, 6)
    return {"prompt": f"A train travels at {speed} km per hour for {hours} hours. How many kilometres does it "
                      "travel? End your reply with the final number.", "answer": str(speed * hours)}


def _calendar(r: random.Random) -> Question:
    kind = r.randrange(4)
    if kind == 0:
        year, n = r.randint(1900, 2030), r.randint(3, 80)
        return {"prompt": f"What year is {n} years after {year}? Answer with just the number.",
                "answer": str(year + n)}
    if kind == 1:
        year = r.choice((1996, 1999, 2000, 2001, 2004, 2010, 2012, 2015, 2016, 2019, 2020, 2023, 2024, 1900))
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return {"prompt": f"Is {year} a leap year? Answer yes or no.", "answer": "yes" if leap else "no",
                "check": "exact"}
    if kind == 2:
        month = r.randrange(12)
        return {"prompt": f"How many days are in {_MONTHS[month]} in the year 2023? Answer with just the number.",
                "answer": str(_MONTH_DAYS[month])}
    start = dt.datetime(2024, 1, 1, r.randint(6, 12), r.choice((0, 15, 30, 45)))
    end = start + dt.timedelta(minutes=r.randint(2, 20) * 15)
    minutes = int((end - start).total_seconds() // 60)
    return {"prompt": f"A meeting starts at {start:%H:%M} and ends at {end:%H:%M}. How many minutes long is it? "
                      "Answer with just the number.", "answer": str(minutes)}


def _topic_labels(r: random.Random) -> Question:
    kind = r.randrange(3)
    if kind == 0:
        topic = r.choice(sorted(_TOPICS))
        return {"prompt": "What is the topic of this headline: sports, politics, technology, or food? Reply with one "
                          f"word.\n\nHeadline: \"{r.choice(_TOPICS[topic])}\"", "answer": topic, "check": "exact"}
    if kind == 1:
        text, label = r.choice(_SPAM)
        return {"prompt": f"Is this email spam or not_spam? Reply with the label only.\n\nEmail: \"{text}\"",
                "answer": label, "check": "exact"}
    text, language = r.choice(_LANGUAGES)
    return {"prompt": f"Which language is this sentence written in? Reply with the language name only.\n\n"
                      f"Sentence: \"{text}\"", "answer": language, "check": "exact"}


def _extract_more(r: random.Random) -> Question:
    name = r.choice(_PEOPLE)
    kind = r.randrange(4)
    if kind == 0:
        phone = f"{r.randint(200, 989)}-{r.randint(200, 989)}-{r.randint(1000, 9999)}"
        return {"prompt": "What phone number is given in this message? Reply with the number only.\n\nMessage: "
                          f"\"Call {name} back at {phone} after lunch.\"", "answer": phone, "check": "contains"}
    if kind == 1:
        product, price = r.choice(_PRODUCTS), r.randint(12, 480)
        return {"prompt": "How many dollars did the item cost? Reply with just the number.\n\nReceipt note: "
                          f"\"{name} bought the {product} for ${price} on Saturday.\"", "answer": str(price)}
    if kind == 2:
        city, other = r.sample(_CITIES, 2)
        return {"prompt": "Which city is the flight going to? Reply with the city name only.\n\nItinerary: "
                          f"\"{name}'s flight leaves {other} at 9am and lands in {city} at 2pm.\"",
                "answer": city, "check": "contains"}
    month, day = r.randrange(12), r.randint(1, 28)
    return {"prompt": "On which day of the month is the appointment? Reply with just the number.\n\nNote: "
                      f"\"{name}'s dentist appointment is on {_MONTHS[month]} {day}.\"", "answer": str(day)}


def _easy_facts(r: random.Random) -> Question:
    question, answer = r.choice(_EASY_FACTS)
    check = "number" if answer.isdigit() else "contains"
    return {"prompt": f"{question} Answer in a few words.", "answer": answer, "check": check}


def _hard_facts(r: random.Random) -> Question:
    question, answer = r.choice(_HARD_FACTS)
    check = "number" if answer.isdigit() else "contains"
    return {"prompt": f"{question} Answer in a few words.", "answer": answer, "check": check}


def _code_more(r: random.Random) -> Question:
    a, b, n = r.randint(2, 9), r.randint(10, 40), r.randint(2, 5)
    word = r.choice(("planet", "violin", "marble", "tiger", "cactus", "winter"))
    programs: tuple[tuple[str, Any], ...] = (
        (f"print({b} % {a})", b % a),
        (f"print(\"{word}\".upper())", word.upper()),
        (f"print(\"{word}\"[:{n}])", word[:n]),
        (f"nums = [{a}, {b}, {n}]\nprint(sum(nums))", a + b + n),
        (f"print(len([x for x in range({b}) if x % {a} == 0]))", len([x for x in range(b) if x % a == 0])),
        (f"d = {{\"a\": {a}, \"b\": {b}}}\nprint(d[\"b\"] - d[\"a\"])", b - a),
        (f"print({a} * {n} > {b})", a * n > b),
        (f"print(sorted([{b}, {a}, {n}])[0])", min(a, b, n)),
        (f"x = {a}\nfor _ in range({n}):\n    x = x * 2\nprint(x)", a * 2 ** n),
    )
    code, out = r.choice(programs)
    return {"prompt": f"What does this Python code print? Reply with the output only.\n\n```python\n{code}\n```",
            "answer": str(out), "check": "number" if isinstance(out, int) and not isinstance(out, bool) else "exact"}


def _yes_no(r: random.Random) -> Question:
    if r.random() < 0.6:
        question, answer = r.choice(_COMMON_SENSE)
        return {"prompt": f"{question} Answer yes or no.", "answer": answer, "check": "exact"}
    a, b = r.sample(range(3, 200), 2)
    word = r.choice(("greater", "smaller"))
    yes = a > b if word == "greater" else a < b
    return {"prompt": f"Is {a} {word} than {b}? Answer yes or no.", "answer": "yes" if yes else "no",
            "check": "exact"}


def _reasoning(r: random.Random) -> Question:
    kind = r.randrange(4)
    if kind == 0:
        people = r.sample(_PEOPLE, 4)
        facts = " ".join(f"{people[i]} finished ahead of {people[i + 1]}." for i in r.sample(range(3), 3))
        ask, answer = r.choice((("first", people[0]), ("last", people[3])))
        return {"prompt": f"{facts} Who finished {ask}? Answer with the name only.", "answer": answer,
                "check": "contains"}
    if kind == 1:
        group, trait = r.choice((("bloops", "razzies"), ("glims", "troves"), ("zents", "marls")))
        name = r.choice(_PEOPLE)
        holds = r.random() < 0.5
        premise = f"All {group} are {trait}. {name} is one of the {group}." if holds else \
            f"All {group} are {trait}. {name} is not one of the {trait}."
        return {"prompt": f"{premise} Is {name} one of the {trait if holds else group}? Answer yes or no.",
                "answer": "yes" if holds else "no", "check": "exact"}
    if kind == 2:
        start, step = r.randint(1, 9), r.randint(2, 7)
        terms = [start + step * i for i in range(5)] if r.random() < 0.6 else [start * (step % 3 + 2) ** i
                                                                                  for i in range(5)]
        shown = ", ".join(str(t) for t in terms[:4])
        return {"prompt": f"What number comes next: {shown}, ...? Answer with just the number.",
                "answer": str(terms[4])}
    word = r.choice(_WORDS)
    letter = r.choice(sorted(set(word)))
    return {"prompt": f"How many times does the letter '{letter}' appear in the word '{word}'? Answer with just the "
                      "number.", "answer": str(word.count(letter))}


def _units_more(r: random.Random) -> Question:
    kind = r.randrange(4)
    n = r.randint(2, 15)
    if kind == 0:
        return {"prompt": f"How many metres are in {n} kilometres? Answer with just the number.",
                "answer": str(n * 1000)}
    if kind == 1:
        return {"prompt": f"How many eggs are in {n} dozen? Answer with just the number.", "answer": str(n * 12)}
    if kind == 2:
        return {"prompt": f"How many minutes are in {n} and a half hours? Answer with just the number.",
                "answer": str(n * 60 + 30)}
    return {"prompt": f"How many cents are in {n} dollars? Answer with just the number.", "answer": str(n * 100)}


_FRUITS = ("apple", "pear", "plum", "fig", "mango", "kiwi", "cherry", "lemon", "grape", "peach", "melon", "lime")
_ROMAN = ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
          (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))


def _roman(n: int) -> str:
    out = []
    for value, letters in _ROMAN:
        count, n = divmod(n, value)
        out.append(letters * count)
    return "".join(out)


def _percent(r: random.Random) -> Question:
    kind = r.randrange(3)
    p = r.choice((5, 10, 15, 20, 25, 30, 40, 50, 75))
    n = r.randint(2, 40) * 20
    if kind == 0:
        return {"prompt": f"What is {p}% of {n}? Reply with just the number.", "answer": f"{n * p / 100:g}"}
    if kind == 1:
        return {"prompt": f"A jacket costs ${n} and is {p}% off. What is the sale price in dollars? End your reply "
                          "with the final number.", "answer": f"{n * (100 - p) / 100:g}"}
    part = n * p // 100
    return {"prompt": f"{part} out of {n} students passed. What percent passed? Reply with just the number.",
            "answer": f"{part * 100 / n:g}"}


def _string_ops(r: random.Random) -> Question:
    word = r.choice(_WORDS + _FRUITS)
    kind = r.randrange(4)
    if kind == 0:
        return {"prompt": f"Write the word '{word}' backwards. Reply with the reversed word only.",
                "answer": word[::-1], "check": "exact"}
    if kind == 1:
        return {"prompt": f"What is the last letter of the word '{word}'? Reply with the letter only.",
                "answer": word[-1], "check": "exact"}
    if kind == 2:
        words = r.sample(_FRUITS, r.randint(3, 7))
        sentence = " ".join(["I", "bought", *words[:-1], "and", words[-1]])
        return {"prompt": f"How many words are in this sentence? Answer with just the number.\n\nSentence: "
                          f"\"{sentence}\"", "answer": str(len(sentence.split()))}
    return {"prompt": f"How many letters are in the word '{word}'? Answer with just the number.",
            "answer": str(len(word))}


def _records(r: random.Random) -> Question:
    name = r.choice(_PEOPLE)
    age, city, product = r.randint(18, 80), r.choice(_CITIES), r.choice(_PRODUCTS)
    order = r.randint(1000, 99999)
    record = {"name": name, "age": age, "city": city, "product": product, "order_id": order}
    keys = list(record)
    r.shuffle(keys)
    ask = r.choice(keys)
    if r.random() < 0.5:
        text = "{" + ", ".join(f"\"{k}\": " + (str(record[k]) if isinstance(record[k], int) else f"\"{record[k]}\"")
                               for k in keys) + "}"
        intro = "JSON"
    else:
        text = "\n".join(f"{k}: {record[k]}" for k in keys)
        intro = "record"
    answer = record[ask]
    return {"prompt": f"What is the value of the field \"{ask}\" in this {intro}? Reply with the value only.\n\n{text}",
            "answer": str(answer), "check": "number" if isinstance(answer, int) else "contains"}


def _compare(r: random.Random) -> Question:
    kind = r.randrange(3)
    if kind == 0:
        a, b = r.sample((0.3, 0.45, 0.5, 0.65, 0.7, 0.75, 0.8, 0.125, 0.09, 0.9), 2)
        return {"prompt": f"Which number is larger, {a} or {b}? Reply with the number only.",
                "answer": f"{max(a, b):g}"}
    if kind == 1:
        kg, grams = r.randint(1, 5), r.choice((500, 1200, 1500, 2500, 3500, 4200, 5500))
        heavier = f"{kg} kg" if kg * 1000 > grams else f"{grams} g"
        return {"prompt": f"Which is heavier, {kg} kg or {grams} g? Reply with the heavier one only.",
                "answer": heavier, "check": "contains"}
    names = r.sample(_PEOPLE, 3)
    ages = r.sample(range(9, 70), 3)
    facts = " ".join(f"{n} is {a} years old." for n, a in zip(names, ages, strict=True))
    ask, pick = r.choice((("oldest", max), ("youngest", min)))
    return {"prompt": f"{facts} Who is the {ask}? Answer with the name only.",
            "answer": names[ages.index(pick(ages))], "check": "contains"}


def _notation(r: random.Random) -> Question:
    kind = r.randrange(3)
    if kind == 0:
        n = r.randint(4, 60)
        return {"prompt": f"What number is the Roman numeral {_roman(n)}? Answer with just the number.",
                "answer": str(n)}
    if kind == 1:
        hour, minute = r.randint(13, 23), r.choice((0, 15, 30, 45))
        return {"prompt": f"What is {hour}:{minute:02d} in 12-hour time? Reply like 3:15 pm.",
                "answer": f"{hour - 12}:{minute:02d} pm", "check": "contains"}
    n = r.randint(2, 30)
    return {"prompt": f"What is {n} squared? Answer with just the number.", "answer": str(n * n)}


def _lists(r: random.Random) -> Question:
    items = r.sample(_FRUITS, r.randint(4, 7))
    shown = ", ".join(items)
    kind = r.randrange(3)
    if kind == 0:
        i = r.randrange(len(items))
        ordinal = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh")[i]
        return {"prompt": f"Here is a list: {shown}. What is the {ordinal} item? Reply with the item only.",
                "answer": items[i], "check": "exact"}
    if kind == 1:
        return {"prompt": f"How many items are in this list: {shown}? Answer with just the number.",
                "answer": str(len(items))}
    return {"prompt": f"Which of these comes first in alphabetical order: {shown}? Reply with the word only.",
            "answer": min(items), "check": "exact"}


MORE_KINDS: dict[str, Callable[[random.Random], Question]] = {
    "multi_step": _multi_step, "money": _money, "calendar": _calendar, "topic_labels": _topic_labels,
    "extraction_more": _extract_more, "easy_facts": _easy_facts, "hard_facts": _hard_facts,
    "code_more": _code_more, "yes_no": _yes_no, "reasoning": _reasoning, "units_more": _units_more,
    # added later, after the kinds above, so those kinds' questions for a seed stay the same
    "percent": _percent, "string_ops": _string_ops, "records": _records, "compare": _compare,
    "notation": _notation, "lists": _lists,
}
