"""The demo's workload: a realistic, mixed day of support-bot traffic, generated offline.

Kinds of request (each with the answer a good model gives, so the demo can check quality):
- ``faq``: support questions, asked again and again and in other words;
- ``near_miss``: questions that look like an FAQ but need a different answer (another
  country, another order number, a negation) — a cache that serves these is wrong;
- ``label``: sentiment labels for product reviews (easy: a small model does them);
- ``hard``: multi-step arithmetic word problems (hard: small models get some wrong);
- ``long``: verbose instructions with a retrieved policy passage and a question.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DemoItem", "build_workload"]


@dataclass
class DemoItem:
    kind: str
    key: str
    messages: list[dict[str, Any]]
    answer: str
    options: dict[str, Any] = field(default_factory=dict)
    working: str = ""  # a worked answer, for questions the models show their working on
    slip: str = ""  # the same working with a calculation slip, as a small model sometimes writes it


SYSTEM = "You are the support assistant of Northwind Outfitters. Answer briefly and accurately."

FAQS: list[tuple[str, list[str], str]] = [
    ("refund", ["How do I get a refund for my order?", "What is the process to get my money back for an order?",
                "Can you explain how refunds for orders work?"],
     "Open Orders, choose the order and press 'Request refund'; money returns within 5 business days."),
    ("shipping_time", ["How long does standard shipping take?", "What is the delivery time for standard shipping?",
                       "How many days until a standard shipment arrives?"],
     "Standard shipping takes 3 to 5 business days."),
    ("reset_password", ["How can I reset my password?", "I forgot my password, how do I reset it?",
                        "What are the steps to reset my account password?"],
     "Use 'Forgot password' on the sign-in page; the reset link is valid for 30 minutes."),
    ("change_address", ["How do I change my shipping address?", "Can I update the delivery address on my account?",
                        "Where do I edit my shipping address?"],
     "Go to Account > Addresses and edit or add an address before the order ships."),
    ("cancel_order", ["How do I cancel an order?", "Can I cancel an order I just placed?",
                      "What should I do to cancel my order?"],
     "Orders can be cancelled from Orders > Cancel within 1 hour of purchase."),
    ("payment_methods", ["Which payment methods do you accept?", "What ways can I pay for my order?",
                         "What forms of payment are accepted?"],
     "We accept Visa, Mastercard, American Express, PayPal and gift cards."),
    ("gift_cards", ["Do gift cards expire?", "Is there an expiry date on gift cards?",
                    "Will my gift card expire at some point?"],
     "Gift cards never expire."),
    ("track_order", ["How can I track my package?", "Where can I see the tracking for my shipment?",
                     "How do I follow my parcel's delivery status?"],
     "The tracking link is in your shipping confirmation email and under Orders."),
    ("return_window", ["How many days do I have to return an item?", "What is the return window for purchases?",
                       "How long after buying can I return something?"],
     "You can return unworn items within 30 days of delivery."),
    ("size_guide", ["Where can I find the size guide?", "Is there a sizing chart I can look at?",
                    "How do I know which size to order?"],
     "Every product page has a 'Size guide' link under the size selector."),
    ("international", ["Do you ship internationally?", "Can you deliver to other countries?",
                       "Is international shipping available?"],
     "We ship to 40 countries; rates are shown at checkout."),
    ("warranty", ["What warranty do your tents have?", "How long is the warranty on tents?",
                  "Are tents covered by a warranty?"],
     "Tents carry a 2-year warranty against manufacturing defects."),
    ("store_hours", ["What are your customer service hours?", "When is customer support available?",
                     "At what times can I reach customer service?"],
     "Support is available 8am to 8pm Eastern, Monday to Saturday."),
    ("price_match", ["Do you offer price matching?", "Will you match a lower price from another store?",
                     "Is there a price match policy?"],
     "Yes: we match authorised retailers' prices within 14 days of purchase."),
    ("student_discount", ["Is there a student discount?", "Do students get a discount?",
                          "Can students get money off?"],
     "Students get 10% off after verifying with a school email."),
]

NEAR_MISSES: list[tuple[str, str]] = [
    ("How long does express shipping take?", "Express shipping takes 1 to 2 business days."),
    ("Do gift cards ever get refunded?", "Gift cards cannot be refunded."),
    ("How do I NOT receive marketing emails?", "Unsubscribe with the link at the bottom of any email."),
    ("What warranty do your backpacks have?", "Backpacks carry a lifetime warranty."),
    ("Where is order 58213 right now?", "Order 58213 is out for delivery."),
    ("Where is order 58217 right now?", "Order 58217 is at the Denver sorting centre."),
    ("Do you ship to Canada?", "Yes, we ship to Canada; duties are included."),
    ("Do you ship to Brazil?", "No, we do not ship to Brazil yet."),
]

POSITIVE = ["Absolutely love this jacket, warm and light.", "The tent went up in five minutes, great design.",
            "Fantastic boots, comfortable from day one.", "Great value and fast delivery, very happy.",
            "The backpack is sturdy and the pockets are clever.", "Best sleeping bag I have owned."]
NEGATIVE = ["The zipper broke after two days.", "Terrible fit and the colour faded in the wash.",
            "Arrived late and the box was crushed.", "The stove leaks gas, very disappointed.",
            "Cheap material, it tore on the first hike.", "Customer service never answered my emails."]

POLICY = ("Northwind Outfitters loyalty programme terms. Members earn {rate} points per dollar spent on "
          "full-price items and half that on sale items. Points are credited when the order ships and "
          "expire {months} months after they were earned unless the member makes another purchase. "
          "Tier status is reviewed every January. Silver members need 500 points a year, Gold members "
          "need {gold} points a year. Gold members get free express shipping and early access to sales. "
          "Points cannot be exchanged for cash and are not transferable between accounts. Returns "
          "remove the points earned on the returned items. ")

VERBOSE = ("Hello! I hope you are doing well today. I would like you to please, if at all possible, read the "
           "following policy text very carefully and then answer my question about it. It is really "
           "important to me that you answer accurately and that you only use the information that is "
           "given in the text below.\n\n\n   Here is the text:\n\n{policy}\n\n\nThank you so much in advance "
           "for your help, I really appreciate it!\n\nMy question is: {question}")


def _hard(rng: random.Random, i: int) -> DemoItem:
    a, b, c = rng.randint(12, 90), rng.randint(3, 9), rng.randint(5, 40)
    q = (f"A shop sells {a} tents a week at ${b * 10} each. Returns are {c} tents a month (4 weeks). "
         f"What is the monthly revenue after returns, in dollars?")
    month, sold, price = a * 4, a * 4 - c, b * 10
    total = sold * price
    steps = (f"Tents sold in a month: {a} * 4 = {month}. After returns: {month} - {c} = {sold}. "
             f"Revenue: {sold} * ${price} = $")
    return DemoItem("hard", f"hard-{i}", [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}],
                    str(total), {"tags": ["math"]}, working=f"{steps}{total}.\n#### {total}",
                    slip=f"{steps}{total + 40}.\n#### {total + 40}")


def build_workload(n: int = 400, seed: int = 7) -> list[DemoItem]:
    """About ``n`` requests in a shuffled order, deterministic for a given seed."""
    rng = random.Random(seed)
    items: list[DemoItem] = []
    share = {"faq": 0.45, "near_miss": 0.05, "label": 0.2, "hard": 0.15, "long": 0.15}
    for _ in range(int(n * share["faq"])):
        key, phrasings, answer = rng.choice(FAQS)
        q = rng.choice(phrasings)
        items.append(DemoItem("faq", key, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}],
                              answer))
    for i in range(int(n * share["near_miss"])):
        q, answer = NEAR_MISSES[i % len(NEAR_MISSES)]
        items.append(DemoItem("near_miss", f"near-{i % len(NEAR_MISSES)}",
                              [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}], answer))
    for i in range(int(n * share["label"])):
        positive = rng.random() < 0.5
        review = rng.choice(POSITIVE if positive else NEGATIVE)
        q = f"Classify the sentiment of this product review as positive or negative.\nReview: {review}"
        items.append(DemoItem("label", f"label-{i}", [{"role": "user", "content": q}],
                              "positive" if positive else "negative", {"tags": ["label"]}))
    for i in range(int(n * share["hard"])):
        items.append(_hard(rng, i))
    for _ in range(n - len(items)):
        rate, months, gold = rng.choice([2, 3, 5]), rng.choice([12, 18, 24]), rng.choice([1500, 2000, 2500])
        policy = POLICY.format(rate=rate, months=months, gold=gold) * 3
        question, answer = rng.choice([
            ("How many points per dollar do members earn on full-price items?", str(rate)),
            ("After how many months do points expire?", str(months)),
            ("How many points a year does Gold status need?", str(gold)),
        ])
        text = VERBOSE.format(policy=policy, question=question)
        items.append(DemoItem("long", f"long-{rate}-{months}-{gold}-{answer}-{len(question)}",
                              [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}], answer))
    rng.shuffle(items)
    return items
