"""Generate the long-document set of the minifier benchmark: ``benchmarks/data/minifier_docs.jsonl``.

Deterministic (a fixed seed; run it again and the file comes out byte for byte the same):
``python -m benchmarks.gen_minifier_docs``. Each of the ten hand-written documents of
``minifier_corpus.jsonl`` (handbook, release notes, lease, lab protocol, itinerary, council
minutes, manual, security policy, study summary, support case) is a template: its facts (names,
phone numbers, codes, amounts, dates, product names) are replaced by fresh values, its paragraphs
are shuffled where their order carries no meaning, and two of its five questions are asked, each
with the new value as the reference. A document's questions therefore have one right answer that
appears in it and nowhere else.

Splits are by template, so that nothing tuned on ``dev`` has seen the wording of ``test``:
``dev`` (4 templates x 6 variants, for tuning the compressor) and ``test`` (6 templates x 7
variants, 84 questions, the numbers reported).
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
CORPUS = DATA / "minifier_corpus.jsonl"
OUT = DATA / "minifier_docs.jsonl"
SEED = 20250411
SYSTEM = "Answer the question using the document. Reply with the answer only."
DEV = ("p01", "p04", "p07", "p10")
TEST = ("p02", "p03", "p05", "p06", "p08", "p09")
VARIANTS = {"dev": 6, "test": 7}

FIRST = (
    "Amira", "Bjorn", "Carmen", "Dmitri", "Elif", "Farah", "Gustavo", "Hana", "Idris", "Johanna", "Kenji", "Leila",
    "Mateo", "Nadia", "Oskar", "Paula", "Quentin", "Rania", "Stefan", "Tamsin", "Ugo", "Valentina", "Wen", "Xavier",
    "Yusuf", "Zofia", "Anders", "Beatriz", "Chidi", "Dalia", "Emeka", "Freya", "Goran", "Hiroko", "Ines", "Jakub",
    "Katarina", "Lucas", "Marisol", "Niamh",
)
LAST = (
    "Abara", "Bergstrom", "Castellano", "Dubois", "Eriksen", "Fonseca", "Gallagher", "Haddad", "Ivanova",
    "Jovanovic", "Kowalczyk", "Lindgren", "Mbeki", "Nakamura", "Oyelaran", "Petersen", "Quist", "Rahimi", "Salonen",
    "Tanaka", "Uchenna", "Varga", "Whitcombe", "Xu", "Yilmaz", "Zielinski", "Achterberg", "Brennan", "Costa",
    "Delacroix", "Engström", "Ferreira", "Grünewald", "Holloway", "Iqbal", "Janssens", "Kaur", "Laine", "Moreau",
    "Novak",
)
COMPANIES = ("Harrow Lettings", "Bridgewell Estates", "Oakfield Property Services", "Larkspur Homes",
             "Meridian Block Management", "Greystone Residential", "Kingsway Managing Agents", "Ashdown Property")
PRODUCTS = ("Beacon", "Quarry", "Lantern", "Trellis", "Cobalt", "Meadow", "Pylon", "Ferry", "Summit")
BIRDS = ("Osprey", "Heron", "Merlin", "Plover", "Curlew", "Lapwing", "Dunlin", "Avocet", "Kittiwake")
FILTERS = ("ClearFlow", "PureDrop", "AquaGuard", "Brita-Max", "Limeless", "SoftStream", "CrystalTap")
FOUNDATIONS = ("Ashcombe", "Halvorsen", "Redmarsh", "Elmstead", "Brightwater", "Kinloch", "Thornbury")
HOTELS = ("Hotel Alfama Sol", "Hotel Tejo Azul", "Hotel Bairro Verde", "Hotel Lumiar", "Hotel Cais Novo",
          "Hotel Estrela", "Hotel Graça Bela")
CITIES = ("Dortmund", "Erfurt", "Bremen", "Leipzig", "Hanover", "Würzburg", "Augsburg", "Kiel")
TOWNS = ("Ashford", "Millbrook", "Eastleigh", "Harwood", "Stonebridge", "Fairhaven", "Kingsmere")
MONTHS = ("January", "February", "April", "June", "July", "September", "October", "November")


def _redigit(rng: random.Random, text: str) -> str:
    """The same shape with new digits (a leading digit stays non-zero) and new capital letters."""
    out = []
    for i, ch in enumerate(text):
        if ch.isdigit():
            lead = i == 0 or not text[i - 1].isdigit()
            out.append("0" if lead and ch == "0" else str(rng.randint(1, 9) if lead else rng.randint(0, 9)))
        elif ch.isupper() and ch.isalpha() and ch.isascii():
            out.append(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ"))
        else:
            out.append(ch)
    return "".join(out)


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


Gen = Callable[[random.Random], str]


@dataclass(frozen=True)
class Slot:
    """One fact of a template: ``old`` (its spelling in the template) is replaced everywhere by a new value."""

    old: str
    new: Gen
    question: str = ""
    refs: Callable[[str], list[str]] = lambda v: [v]


def _digits(old: str) -> Gen:
    return lambda rng: _redigit(rng, old)


def _pick(pool: tuple[str, ...]) -> Gen:
    return lambda rng: rng.choice(pool)


def _int(lo: int, hi: int, fmt: str = "{}") -> Gen:
    return lambda rng: fmt.format(rng.randint(lo, hi))


def _no_comma(v: str) -> list[str]:
    return [v, v.replace(",", "")]


_NUMBER = {"one": 1, "two": 2, "three": 3, "five": 5, "ten": 10, "fifteen": 15}


def _num(v: str) -> str:
    return re.sub(r"[^0-9.,]", "", v)


# Slots with a question are asked about; slots without one only vary the text (other names, the
# brand) so that documents of one template differ in more than the answers.
@dataclass(frozen=True)
class Template:
    """The facts of one hand-written document, and whether its paragraphs may be shuffled."""

    shuffle: bool
    slots: list[Slot]


TEMPLATES: dict[str, Template] = {
    "p01": Template(True, [
        Slot("Ingrid Vos", _person, "Who is the site manager?"),
        Slot("010-555-0143", _digits("010-555-0143"), "What is the incident hotline number for the site?"),
        Slot("6 kilometres", _int(4, 9, "{} kilometres"),
             "What is the maximum speed for forklifts inside the building?",
             lambda v: [v, v.replace("kilometres", "km")]),
        Slot("05:30", _pick(("04:45", "05:00", "05:15", "05:45", "06:00", "06:15")),
             "At what time does the early shift start?"),
        Slot("behind door 12", _int(8, 17, "behind door {}"),
             "Behind which door is the caged area for hazardous goods?", lambda v: [v.replace("behind ", "")]),
        Slot("Pieter Jansen", _person), Slot("Rotterdam", _pick(("Antwerp", "Venlo", "Tilburg", "Ghent", "Utrecht"))),
    ]),
    "p02": Template(True, [
        # the product's name, and with it these two values, is set by _product_slots
        Slot("harbor.toml", lambda rng: "", "What is the name of the new configuration file?"),
        Slot("HARBOR_NO_PROGRESS", lambda rng: "", "Which environment variable turns off the progress bar?"),
        Slot("Server 3.8", _pick(("Server 3.6", "Server 3.7", "Server 3.9", "Server 2.11", "Server 3.10")),
             "What is the minimum supported server version for this client?", lambda v: [v.split()[-1]]),
        Slot("defaults to 4", _int(2, 8, "defaults to {}"), "What is the default number of parallel uploads?",
             lambda v: [v.split()[-1]]),
        Slot("after 90 days", _pick(("after 30 days", "after 45 days", "after 60 days", "after 120 days",
                                     "after 180 days")), "After how many days do access tokens expire by default?",
             lambda v: [v.split()[1]]),
        Slot("4.2.0", _pick(("4.3.0", "4.4.1", "4.6.0", "4.7.2", "4.8.0", "4.9.1"))),
    ]),
    "p03": Template(True, [
        Slot("1,450", lambda rng: f"{rng.randint(1, 2)},{rng.randint(1, 9)}{rng.choice('05')}0",
             "What is the monthly rent?", _no_comma),
        Slot("0161 555 0199", _digits("0161 555 0199"), "What is the phone number of the emergency repair line?"),
        Slot("Crescent Property Management", _pick(COMPANIES), "Who is the managing agent for the building?"),
        Slot("2,175", _digits("2,175"), "How much is the deposit?", _no_comma),
        Slot("marked with the number 14", _int(2, 40, "marked with the number {}"),
             "What is the number of the parking space?", lambda v: [v.split()[-1]]),
        Slot("Margaret Ellison", _person), Slot("Daniel Okoye", _person), Slot("Priya Raman", _person),
        Slot("Linden Row", _pick(("Cedar Row", "Elm Terrace", "Rowan Street", "Hazel Road", "Birch Lane"))),
    ]),
    "p04": Template(True, [
        Slot("Helena Marsh", _person, "Who is the protocol owner?"),
        Slot("extension 4471", _digits("extension 4471"), "What is the extension of the laboratory manager?",
             lambda v: [v.split()[-1]]),
        Slot("freezer F3", _int(1, 9, "freezer F{}"), "In which freezer is the RNA stored?", lambda v: [v.split()[-1]]),
        Slot("Tomasz Wiśniewski", _person, "Who is the laboratory manager?"),
        Slot("in room 2.10", _pick(("in room 1.06", "in room 3.18", "in room 2.05", "in room 4.11", "in room 1.22")),
             "In which room is the spectrophotometer?", lambda v: [v.split()[-1]]),
        Slot("LP-118", _digits("LP-118")),
    ]),
    "p05": Template(False, [
        Slot("88213-LSB", _digits("88213-LSB"), "What is the hotel confirmation number?"),
        Slot("KX7M2Q", _digits("KX7M2Q"), "What is the booking reference for the flights?"),
        Slot("TP 753", _digits("TP 753"), "What is the flight number of the outbound flight?",
             lambda v: [v, v.replace(" ", "")]),
        Slot("Hotel Miradouro", _pick(HOTELS), "In which hotel is the traveller staying?",
             lambda v: [v.replace("Hotel ", "")]),
        Slot("seat 17C", _digits("seat 17C"), "Which seat is booked on the outbound flight?",
             lambda v: [v.split()[-1]]),
        Slot("Sofia Lindqvist", _person), Slot("TP 756", _digits("TP 756")),
    ]),
    "p06": Template(False, [
        Slot("Nadia Petrov", _person, "Who is the town clerk?"),
        Slot("petition with 214", _int(120, 980, "petition with {}"),
             "How many signatures did the skate park petition have?", lambda v: [v.split()[-1]]),
        Slot("95,000", _int(70, 190, "{},000"), "What is the estimated cost of the skate park?", _no_comma),
        Slot("Owen Price", _person, "Who is the finance officer?"),
        Slot("on 9 April", lambda rng: f"on {rng.randint(2, 28)} {rng.choice(MONTHS)}",
             "On which date is the next meeting of the council?", lambda v: [v.replace("on ", "")]),
        Slot("Alan Whitfield", _person), Slot("Westbrook", _pick(TOWNS)),
    ]),
    "p07": Template(True, [
        Slot("Aqua-Pure", _pick(FILTERS), "What is the name of the water filter?"),
        Slot("0800 555 0712", _digits("0800 555 0712"), "What is the customer service phone number?"),
        Slot("E07", lambda rng: f"E{rng.choice((21, 23, 26, 31, 33, 38))}",
             "Which display message means that the grinder is blocked?"),
        Slot("two-year warranty", _pick(("three-year warranty", "five-year warranty", "one-year warranty")),
             "How long is the warranty?", lambda v: [v.split("-")[0] + "-year", f"{_NUMBER[v.split('-')[0]]} year"]),
        Slot("factory setting is 5", _int(3, 9, "factory setting is {}"),
             "What is the factory setting of the grinder?", lambda v: [v.split()[-1]]),
        Slot("Barista 700", _pick(("Barista 500", "Barista 650", "Barista 820", "Barista 900"))),
    ]),
    "p08": Template(True, [
        Slot("at least 14 characters", _int(10, 20, "at least {} characters"),
             "What is the minimum password length?", lambda v: [v.split()[2]]),
        Slot("Kestrel", _pick(BIRDS), "What is the company VPN called?", lambda v: [v + "Connect"]),
        Slot("Rebecca Thorne", _person, "Who owns the information security policy?"),
        Slot("extension 7300", _digits("extension 7300"), "What is the extension of the incident hotline?",
             lambda v: [v.split()[-1]]),
        Slot("after five minutes", _pick(("after two minutes", "after three minutes", "after ten minutes",
                                          "after fifteen minutes")),
             "After how many minutes of inactivity do laptops lock?",
             lambda v: [v.split()[1] + " minutes", f"{_NUMBER[v.split()[1]]} minutes"]),
    ]),
    "p09": Template(True, [
        Slot("Amara Nwosu", _person, "Who led the study?"),
        Slot("3,912", lambda rng: f"{rng.randint(2, 7)},{rng.randint(100, 999)}",
             "How many pupils took part in the study in total?", _no_comma),
        Slot("Westmoor", _pick(FOUNDATIONS), "Which foundation funded the study?"),
        Slot("in 24 secondary", _int(14, 40, "in {} secondary"), "In how many secondary schools was the trial run?",
             lambda v: [v.split()[1]]),
        Slot("0.62 pounds", lambda rng: f"0.{rng.randint(41, 95)} pounds",
             "How much did one breakfast cost on average?", lambda v: [_num(v)]),
        Slot("Northfield", _pick(("Southgate", "Eastmoor", "Highcliffe", "Lowfield", "Westwick"))),
    ]),
    "p10": Template(False, [
        Slot("ORD-7734519", _digits("ORD-7734519"), "What is the order number?"),
        Slot("Miriam Osei", _person, "Who is the case owner in the second-line team?"),
        Slot("C-301774", _digits("C-301774"), "What is the customer number?"),
        Slot("689.00", lambda rng: f"{rng.randint(420, 990)}.00", "How much did the customer pay in total?",
             lambda v: [v, v[:-3]]),
        Slot("Kassel", _pick(CITIES), "In which city is the delivery company's depot?"),
        Slot("Jonas Weber", _person), Slot("#48213", _digits("#48213")),
    ]),
}


# The start of a one-sentence answer to each question, given to the reader as the beginning of its
# reply, so that even a 135M model answers by completing the sentence instead of rambling.
LEADS = {
    "Who is the site manager?": "The site manager is",
    "What is the incident hotline number for the site?": "The incident hotline number for the site is",
    "What is the maximum speed for forklifts inside the building?":
        "The maximum speed for forklifts inside the building is",
    "At what time does the early shift start?": "The early shift starts at",
    "Behind which door is the caged area for hazardous goods?": "The caged area for hazardous goods is behind",
    "What is the name of the new configuration file?": "The new configuration file is",
    "Which environment variable turns off the progress bar?":
        "The environment variable that turns off the progress bar is",
    "What is the minimum supported server version for this client?":
        "The minimum supported server version for this client is",
    "What is the default number of parallel uploads?": "The default number of parallel uploads is",
    "After how many days do access tokens expire by default?": "By default, access tokens expire after",
    "What is the monthly rent?": "The monthly rent is",
    "What is the phone number of the emergency repair line?": "The phone number of the emergency repair line is",
    "Who is the managing agent for the building?": "The managing agent for the building is",
    "How much is the deposit?": "The deposit is",
    "What is the number of the parking space?": "The parking space is number",
    "Who is the protocol owner?": "The protocol owner is",
    "What is the extension of the laboratory manager?": "The extension of the laboratory manager is",
    "In which freezer is the RNA stored?": "The RNA is stored in freezer",
    "Who is the laboratory manager?": "The laboratory manager is",
    "In which room is the spectrophotometer?": "The spectrophotometer is in room",
    "What is the hotel confirmation number?": "The hotel confirmation number is",
    "What is the booking reference for the flights?": "The booking reference for the flights is",
    "What is the flight number of the outbound flight?": "The flight number of the outbound flight is",
    "In which hotel is the traveller staying?": "The traveller is staying at",
    "Which seat is booked on the outbound flight?": "The seat booked on the outbound flight is",
    "Who is the town clerk?": "The town clerk is",
    "How many signatures did the skate park petition have?": "The skate park petition had",
    "What is the estimated cost of the skate park?": "The estimated cost of the skate park is",
    "Who is the finance officer?": "The finance officer is",
    "On which date is the next meeting of the council?": "The next meeting of the council is on",
    "What is the name of the water filter?": "The water filter is called",
    "What is the customer service phone number?": "The customer service phone number is",
    "Which display message means that the grinder is blocked?":
        "The display message that means the grinder is blocked is",
    "How long is the warranty?": "The warranty is",
    "What is the factory setting of the grinder?": "The factory setting of the grinder is",
    "What is the minimum password length?": "The minimum password length is",
    "What is the company VPN called?": "The company VPN is called",
    "Who owns the information security policy?": "The information security policy is owned by",
    "What is the extension of the incident hotline?": "The extension of the incident hotline is",
    "After how many minutes of inactivity do laptops lock?": "Laptops lock after",
    "Who led the study?": "The study was led by",
    "How many pupils took part in the study in total?": "The total number of pupils who took part was",
    "Which foundation funded the study?": "The study was funded by the",
    "In how many secondary schools was the trial run?": "The trial was run in",
    "How much did one breakfast cost on average?": "On average, one breakfast cost",
    "What is the order number?": "The order number is",
    "Who is the case owner in the second-line team?": "The case owner in the second-line team is",
    "What is the customer number?": "The customer number is",
    "How much did the customer pay in total?": "In total, the customer paid",
    "In which city is the delivery company's depot?": "The delivery company's depot is in",
}


def _product_slots(rng: random.Random) -> dict[str, str]:
    """Harbor (the release notes' product) renamed in all its spellings, with the two facts that carry it."""
    name = rng.choice(PRODUCTS)
    return {"harbor.toml": f"{name.lower()}.toml", "harbor.ini": f"{name.lower()}.ini",
            "HARBOR_NO_PROGRESS": f"{name.upper()}_NO_PROGRESS", "Harbor": name, "harbor": name.lower()}


def variant(template_id: str, base: str, k: int, rng: random.Random) -> dict[str, object]:
    spec = TEMPLATES[template_id]
    slots = spec.slots
    values = {s.old: s.new(rng) for s in slots}
    if template_id == "p02":
        values.update(_product_slots(rng))
    text = base
    # longest first, through placeholders, so that a value never matches another slot's old text
    order = sorted(values, key=len, reverse=True)
    for i, old in enumerate(order):
        text = text.replace(old, f"\x00{i}\x00")
    for i, old in enumerate(order):
        text = text.replace(f"\x00{i}\x00", values[old])
    if spec.shuffle:
        paragraphs = text.split("\n\n")
        head, body = paragraphs[:2], paragraphs[2:]
        rng.shuffle(body)
        text = "\n\n".join(head + body)
    asked = [s for s in slots if s.question]
    chosen = [asked[k % len(asked)], asked[(k + 2) % len(asked)]]
    questions = []
    for s in chosen:
        refs = s.refs(values[s.old])
        assert all(r and r in text for r in refs[:1]), (template_id, s.old, refs)
        questions.append({"question": s.question, "lead": LEADS[s.question], "references": refs})
    return {"document": text, "questions": questions}


def generate() -> list[dict[str, object]]:
    rng = random.Random(SEED)
    bases = {}
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if item["kind"] == "passage":
            bases[item["id"]] = item["document"]
    out: list[dict[str, object]] = []
    for split, ids in (("dev", DEV), ("test", TEST)):
        for template_id in ids:
            for k in range(VARIANTS[split]):
                v = variant(template_id, bases[template_id], k, rng)
                out.append({"id": f"{template_id}-v{k + 1}", "split": split, "template": template_id,
                            "system": SYSTEM, **v})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    items = generate()
    args.out.write_text("".join(json.dumps(it, ensure_ascii=False) + "\n" for it in items), encoding="utf-8")
    print(f"wrote {len(items)} documents to {args.out}")


if __name__ == "__main__":
    main()
