"""The verifier refuses look-alike questions that need a different answer, and lets
paraphrases through. Its word lists were tuned on data/verifier_dev.tsv (costmw's own pairs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from costmw.plugins.cache import CHECKS, Verifier
from hypothesis import given, settings
from hypothesis import strategies as st

DEV = Path(__file__).parent / "data" / "verifier_dev.tsv"
DEV_DOCS = Path(__file__).parent / "data" / "verifier_dev_docs.tsv"


def load_pairs(path: Path) -> list[tuple[bool, str, str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            label, kind, a, b = line.split("\t")
            rows.append((label == "1", kind, a, b))
    return rows


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier()


@pytest.mark.parametrize(("a", "b", "reason"), [
    ("What is the capital of France?", "What is the capital of Germany?", "entity"),
    ("what is the currency of japan?", "what is the currency of china?", "entity"),
    ("Give me 3 tips for better sleep.", "Give me 5 tips for better sleep.", "number"),
    ("Who was the first president of the United States?", "Who was the second president of the United States?",
     "number"),
    ("Which holidays are in December?", "Which holidays are in November?", "date"),
    ("Convert 5 kilograms to pounds.", "Convert 5 kilograms to ounces.", "unit"),
    ("Which foods are safe for dogs?", "Which foods are not safe for dogs?", "negation"),
    ("Show me hotels with free parking.", "Show me hotels without free parking.", "negation"),
    ("How do I install Docker?", "How do I uninstall Docker?", "direction"),
    ("Why is Python slower than C?", "Why is C slower than Python?", "direction"),
    ("Translate this from English to French.", "Translate this from French to English.", "direction"),
    ("How do I reverse a string in Python?", "How do I reverse a string in JavaScript?", "entity"),
    ("How do I make an HTTP request with requests?", "How do I make an HTTP request with httpx?", "entity"),
    ("What is the status of order #48213?", "What is the status of order #48219?", "identifier"),
    ("Send the invoice to anna@example.com", "Send the invoice to anne@example.com", "identifier"),
    ("Give me the list of EU countries as JSON.", "Give me the list of EU countries as CSV.", "format"),
    ("Write a poem about the sea.", "Write a haiku about the sea.", "format"),
])
def test_refuses_what_changes_the_answer(verifier: Verifier, a: str, b: str, reason: str) -> None:
    verdict = verifier.check(a, b)
    assert not verdict.ok
    assert verdict.reason == reason
    assert not verifier.check(b, a).ok


@pytest.mark.parametrize(("a", "b"), [
    ("What is the capital of France?", "Which city is the capital of France?"),
    ("How do I merge two dictionaries in Python?", "What's the best way to combine two dicts in Python?"),
    ("What year did World War II end?", "When did the Second World War end?"),
    ("How many ounces are in a cup?", "How many oz in one cup?"),
    ("What does the `load_dataset` function return?", "What is returned by the `load_dataset` function?"),
    ("Version 3.2 adds support for async callbacks.", "Support for async callbacks was added in version 3.2."),
    ("What is natural language processing used for?", "What is NLP used for?"),
    ("No, it does not exist in v2.10.0.", "It is not available in version 2.10.0."),
])
def test_lets_paraphrases_through(verifier: Verifier, a: str, b: str) -> None:
    assert verifier.check(a, b).ok, verifier.check(a, b)
    assert verifier.check(b, a).ok


def test_keeps_paraphrases_and_refuses_look_alikes_on_the_dev_pairs(verifier: Verifier) -> None:
    (kept, positives), (refused, negatives) = _kept_and_refused(verifier, DEV)
    assert positives >= 80 and negatives >= 75
    assert kept / positives >= 0.95
    assert refused / negatives >= 0.97


def _kept_and_refused(verifier: Verifier, path: Path) -> tuple[tuple[int, int], tuple[int, int]]:
    """(paraphrases passed both ways, paraphrases), (look-alikes refused either way, look-alikes)."""
    pairs = load_pairs(path)
    both = [(same, verifier.check(a, b).ok and verifier.check(b, a).ok) for same, _, a, b in pairs]
    kept = sum(ok for same, ok in both if same)
    refused = sum(not ok for same, ok in both if not same)
    positives = sum(same for same, _ in both)
    return (kept, positives), (refused, len(both) - positives)


def test_checks_can_be_chosen_and_unknown_ones_are_named(verifier: Verifier) -> None:
    only_numbers = Verifier(checks=["number"])
    assert only_numbers.check("What is the capital of France?", "What is the capital of Germany?").ok
    assert not only_numbers.check("Give me 3 tips", "Give me 5 tips").ok
    assert set(CHECKS) >= {"entity", "number", "negation", "format"}
    with pytest.raises(ValueError, match="spelling"):
        Verifier(checks=["spelling"])


def test_identical_text_always_passes(verifier: Verifier) -> None:
    text = "Is 97 a prime number, not 91?"
    assert verifier.check(text, text).ok


@pytest.mark.parametrize(("a", "b"), [
    ("How do LLMs handle long prompts?", "How does an LLM handle long prompts?"),
    ("What APIs does the service offer?", "Which API does the service offer?"),
    ("Is React a JS library?", "Is React a JavaScript library?"),
    ("How does RAG reduce hallucinations?", "How does retrieval-augmented generation reduce hallucinations?"),
    ("AutoTrain is a no-code tool for training models.", "AutoTrain trains models with no code."),
    ("Nothing is simpler than the pipeline function for inference.",
     "The pipeline function is the easiest way to run inference."),
    ("Spaces hosts demo apps without hassle.", "Spaces makes hosting demo apps easy."),
])
def test_lets_reworded_terms_and_expansions_through(verifier: Verifier, a: str, b: str) -> None:
    assert verifier(a, b), verifier(a, b)
    assert verifier(b, a), verifier(b, a)


@pytest.mark.parametrize(("a", "b", "reason"), [
    ("Why is Python not faster than C?", "Why is Python faster than C?", "negation"),
    ("Can I make this cake without sugar?", "Can I make this cake with sugar?", "negation"),
    ("Is React a JS library?", "Is React a Python library?", "entity"),
])
def test_refuses_a_negated_or_swapped_term_beside_a_paraphrase(verifier: Verifier, a: str, b: str, reason: str) -> None:
    verdict = verifier(a, b)
    assert not verdict and verdict.reason == reason


@given(st.text(alphabet=st.sampled_from(list("aZb9_.-@/\\#()`'\" x:")), max_size=30))
@settings(max_examples=400, deadline=None)
def test_the_quick_identifier_hint_never_hides_an_identifier(text: str) -> None:
    from costmw.plugins.cache import _text

    if any(_text._IDENT.finditer(text)):
        assert _text._IDENT_HINT(text)
    if _text._QUOTED.search(text):
        assert _text._QUOTE_HINT(text)


# -- negation is read as what it negates, not as a yes/no flag per text --------------------
@pytest.mark.parametrize(("a", "b"), [
    ("Which countries don't use the euro?", "Which countries use the euro?"),
    ("Which apps don't need an internet connection?", "Which apps require an internet connection?"),
    ("How do I stop my laptop from overheating?", "Why is my laptop overheating?"),
    ("Which cereals are gluten-free?", "Which cereals contain gluten?"),
    ("Why won't my car start in the cold?", "Why does my car start fine in the cold?"),
    ("Which foods are not allowed on a keto diet?", "Which foods are allowed on a keto diet?"),
    ("What should I avoid eating before bed?", "What should I eat before bed?"),
    ("Which medicines must not be taken with alcohol?", "Which medicines are safe to take with alcohol?"),
    ("Which plants don't need much sunlight?", "Which plants love lots of sunlight?"),
])
def test_refuses_a_negated_look_alike(verifier: Verifier, a: str, b: str) -> None:
    for x, y in ((a, b), (b, a)):
        verdict = verifier(x, y)
        assert not verdict and verdict.reason == "negation", (x, y, verdict)


@pytest.mark.parametrize(("a", "b"), [
    ("Why won't my car start?", "Why does my car not start?"),
    ("This option has no effect on Windows.", "This option is ignored on Windows."),
    ("The server refuses to accept uploads larger than 10 MB.",
     "The server will not accept uploads larger than 10 MB."),
    ("The package has zero dependencies.", "The package has no dependencies."),
    ("Unused imports should be removed.", "Imports that are not used should be removed."),
    ("How do I avoid merge conflicts in git?", "How can I prevent merge conflicts in git?"),
    ("If a tokenizer is not provided, the default tokenizer of the model is used.",
     "The model's default tokenizer is used when no tokenizer is passed."),
    ("Green tea comes from leaves that are not oxidized.", "Green tea is made from unoxidized leaves."),
    ("Transformers.js executes models right in the browser without needing a server.",
     "Transformers.js runs models directly in the browser with no server."),
    ("It is not only fast but also cheap.", "It is fast and also cheap."),
    ("Which foods are not healthy?", "Which foods are unhealthy?"),
    ("Which laptops have no fan?", "Which laptops are fanless?"),
])
def test_lets_a_negation_in_other_words_through(verifier: Verifier, a: str, b: str) -> None:
    assert verifier(a, b), verifier(a, b)
    assert verifier(b, a), verifier(b, a)


def test_zero_is_a_number_unless_it_says_no(verifier: Verifier) -> None:
    assert verifier("Safetensors loads tensors with zero copy.", "Safetensors loads tensors without copying.")
    assert verifier("What happens when you divide by zero?", "What happens when you divide by two?").reason == "number"
    assert verifier("Is the list zero-indexed?", "Is the list one-indexed?").reason == "number"


IDENTIFIERS_IN_OTHER_WORDS = [
    ("How do I call datasets.load_dataset() with a local CSV file?",
     "How do I use load_dataset() to load a local CSV file?", True),
    ("What is the `DatasetBuilder` class used for?", "What is the dataset builder class used for?", True),
    ('What does the guide "how to share a dataset on the Hub" explain?',
     "What does the guide on how to share a dataset to the Hub explain?", True),
    ("What does np.sum do?", "What does torch.sum do?", False),
    ("What does pandas.read_csv return?", "What does polars.read_csv return?", False),
    ("What is the `DatasetBuilder` class?", "What is the `DatasetDict` class?", False),
    ("How do I read config.yaml in Python?", "How do I read yaml in Python?", False),
]


def test_a_stored_reading_of_an_older_format_is_read_again() -> None:
    from costmw.plugins.cache._text import READING_FORMAT, read_facts

    fresh = Verifier()
    old = {**read_facts("Which foods are not safe for dogs?").to_data(), "format": "facts/1", "negated": True}
    assert READING_FORMAT != "facts/1"
    assert not fresh.remember("Which foods are not safe for dogs?", old)
    assert not fresh("Which foods are safe for dogs?", "Which foods are not safe for dogs?")


ACRONYMS_CALLS_AND_EXPANSIONS = [
    ("The HTTP 201 status code means a resource was created.", "A 201 status code means a resource was created.",
     True),
    ("What is the default HTTP port?", "What is the default FTP port?", False),
    ("How do I reset my API key?", "How do I reset my SSH key?", False),
    ("How do I get the URL of the current page?", "How do I get the title of the current page?", False),
    ("Python 3 removed the print statement in favour of the print() function.",
     "In Python 3, print became a function instead of a statement.", True),
    ("What does print() return?", "What does input() return?", False),
    ("JSON Web Tokens carry claims signed by the server.", "A JWT holds claims that the server has signed.", True),
    ("How do I verify a JSON Web Token?", "How do I verify a JSON schema?", False),
]


NEGATED_WORD_AGAINST_ITS_OPPOSITE = [
    ("Is this field not required?", "Is this field optional?", True),
    ("The feature is not enabled by default.", "The feature is disabled by default.", True),
    ("Are the two strings not the same?", "Are the two strings different?", True),
    ("The feature is enabled by default.", "The feature is disabled by default.", False),
    ("Why is the package installed twice?", "Why is the package uninstalled twice?", False),
    ("Is the setting mandatory?", "Is the setting optional?", False),
    ("The feature is not enabled by default.", "The feature is enabled by default.", False),
    ("Which formats use lossless compression?", "Which formats use lossy compression?", False),
    ("Is the sync client thread-safe?", "Is the async client thread-safe?", False),
    ("How do I write a synchronous handler?", "How do I write an asynchronous handler?", False),
    ("Should the service be stateful?", "Should the service be stateless?", False),
]


@pytest.mark.parametrize(("a", "b", "same"), IDENTIFIERS_IN_OTHER_WORDS + ACRONYMS_CALLS_AND_EXPANSIONS
                         + NEGATED_WORD_AGAINST_ITS_OPPOSITE)
def test_judged_the_same_both_ways(verifier: Verifier, a: str, b: str, same: bool) -> None:
    """Identifiers named in other words (a call by its bare name, ``owner.name`` by its last part),
    everyday acronyms used as modifiers, expansions such as JSON Web Token, and a negated word
    against its opposite; each look-alike beside them must still be refused."""
    assert bool(verifier(a, b)) is same and bool(verifier(b, a)) is same, (verifier(a, b), verifier(b, a))


def test_keeps_paraphrases_and_refuses_look_alikes_on_documentation_style_pairs(verifier: Verifier) -> None:
    """Documentation-style questions and statements reworded as a paraphrasing model would, and
    look-alikes that change one identifier, direction, unit or negation."""
    (kept, positives), (refused, negatives) = _kept_and_refused(verifier, DEV_DOCS)
    assert (positives, negatives) == (200, 160)
    assert kept >= 180 and refused >= 150, (kept, refused)


SAID_IN_OTHER_WORDS = [
    # a call in backticks named as "the ... method"
    ("The `fit()` method returns the fitted estimator.", "The fit method returns the fitted estimator.", True),
    ("Use `os.path.join()` to build file paths.", "Build file paths with the os.path.join function.", True),
    ("Use `os.path.join()` to build file paths.", "Build file paths with the os.path.split function.", False),
    # hyphenated words as separate words
    ("A 7B-parameter model needs about 14 GB.", "A 7B parameter model needs about 14 GB.", True),
    # "rather than" / "instead of" say what a negation says
    ("The `map()` function does not modify the dataset; it returns a new one.",
     "Rather than modifying the dataset, the map method returns a new one.", True),
    ("The `map()` function modifies the dataset in place.",
     "The `map()` function does not modify the dataset in place.", False),
    # restricting words answer a negation said in other words; a negated word said plainly is refused
    ("The elements of a tuple cannot be modified.", "The elements of a tuple are read-only.", True),
    ("The `attrs` attribute can be modified.", "The `attrs` attribute is read-only.", False),
    ("Git does not track empty directories.", "Git tracks empty directories.", False),
    ("Must not be taken with alcohol.", "Safe to take with alcohol.", False),
    # "keep ... from" prevents only before a verb in -ing
    ("A venv isolates dependencies from the system Python.",
     "A venv keeps dependencies separate from the system Python.", True),
    ("How do I keep the cache from growing?", "How do I make the cache grow?", False),
    # "in" after a number is an inch only at the end of a phrase
    ("Microsoft bought GitHub for 7.5 billion dollars in stock.",
     "Microsoft bought GitHub for $7.5 billion in stock.", True),
    ("Is the screen 12 in. wide?", "Is the screen 12 cm wide?", False),
    # text lengths after a number are units
    ("Set max_length to 512 tokens.", "Set max_length to 512 characters.", False),
    ("Summaries have at most 512 tokens.", "A summary is at most 512 tokens long.", True),
    # "-like" still names the format
    ("MongoDB stores JSON-like documents.", "MongoDB stores documents resembling JSON.", True),
    ("MongoDB stores JSON-like documents.", "MongoDB stores documents resembling YAML.", False),
    # from A to B, reversed
    ("rsync copies files from the local machine to the remote server.",
     "rsync transfers files from the remote server to the local machine.", False),
    ("rsync copies files from the local machine to the remote server.",
     "From the local machine, rsync transfers files to the remote server.", True),
    # opposites named in other forms, and both words on both sides
    ("Containers started with --rm are deleted when they exit.",
     "Containers started with --rm are kept when they exit.", False),
    ("Adding a tracked file to .gitignore does not remove it.",
     "A tracked file added to .gitignore is not removed.", True),
    ("Is the client sync?", "Is the client async?", False),
    # what is chosen over what
    ("Does `df.loc[]` return a copy rather than a view?",
     "Does `df.loc[]` return a view rather than a copy?", False),
    ("Store timestamps in UTC rather than local time.", "Rather than local time, store timestamps in UTC.", True),
    ("Migrate the database from MySQL to PostgreSQL.", "Migrate the database to PostgreSQL from MySQL.", True),
    ("Migrate the database from MySQL to PostgreSQL.", "Migrate the database to MySQL from PostgreSQL.", False),
    # a pronoun a negation reaches is what it negates
    ("No one can push to the main branch.", "Anyone can push to the main branch.", False),
    ("Will it work without it?", "Will it work with it?", False),
    ("Repositories without one are harder to find.", "Repositories that lack one are harder to find.", True),
    # "X-ing ... is not possible / unnecessary" negates X-ing
    ("You cannot rename a column in old SQLite versions.",
     "Renaming a column is not possible in old SQLite versions.", True),
    ("You can rename a column in old SQLite versions.",
     "Renaming a column is not possible in old SQLite versions.", False),
    ("You do not have to specify the tokenizer.", "Specifying the tokenizer is unnecessary.", True),
    # "not ... well" says "poorly"
    ("Pandas does not handle huge files well.", "Huge files are handled poorly by pandas.", True),
    ("Pandas does not handle huge files.", "Pandas handles huge files.", False),
    # the object of the verb a negation reaches, after its preposition, is near it
    ("It overwrites the branch without asking for confirmation.",
     "It overwrites the branch with no confirmation prompt.", True),
    ("It overwrites the branch without asking for confirmation.",
     "It asks for confirmation before overwriting the branch.", False),
]


@pytest.mark.parametrize(("a", "b", "same"), SAID_IN_OTHER_WORDS)
def test_judges_identifiers_in_prose_direction_words_and_negation_reach(verifier: Verifier, a: str, b: str,
                                                                         same: bool) -> None:
    assert bool(verifier(a, b)) is same and bool(verifier(b, a)) is same, (verifier(a, b), verifier(b, a))
