"""Word lists the cache verifier uses to see what changes an answer.

Plain data, lower-case. Multi-word names are written with ``_`` between the words; the verifier
joins them the same way before it looks words up.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _list(text: str) -> list[str]:
    return text.split()


def _alias(words: str, canonical: str) -> dict[str, str]:
    return dict.fromkeys(words.split(), canonical)


COUNTRIES = _words("""
afghanistan albania algeria andorra angola argentina armenia australia austria azerbaijan bahamas bahrain
bangladesh barbados belarus belgium belize benin bhutan bolivia bosnia botswana brazil brunei bulgaria burundi
cambodia cameroon canada chad chile china colombia comoros congo croatia cuba cyprus czechia czech denmark
djibouti dominica ecuador egypt eritrea estonia eswatini ethiopia fiji finland france gabon gambia georgia
germany ghana greece grenada guatemala guinea guyana haiti honduras hungary iceland india indonesia iran iraq
ireland israel italy jamaica japan jordan kazakhstan kenya kiribati kosovo kuwait kyrgyzstan laos latvia
lebanon lesotho liberia libya liechtenstein lithuania luxembourg madagascar malawi malaysia maldives mali
malta mauritania mauritius mexico micronesia moldova monaco mongolia montenegro morocco mozambique myanmar
namibia nauru nepal netherlands holland nicaragua niger nigeria macedonia norway oman pakistan palau palestine
panama paraguay peru philippines poland portugal qatar romania russia rwanda samoa senegal serbia seychelles
singapore slovakia slovenia somalia spain sudan suriname sweden switzerland syria taiwan tajikistan tanzania
thailand togo tonga tunisia turkey turkmenistan tuvalu uganda ukraine uruguay uzbekistan vanuatu vatican
venezuela vietnam yemen zambia zimbabwe usa uk uae eu england scotland wales greenland
south_africa south_korea north_korea new_zealand united_states united_kingdom saudi_arabia sri_lanka
costa_rica el_salvador puerto_rico hong_kong ivory_coast sierra_leone east_timor
""")

PLACES = _words("""
london paris berlin madrid rome lisbon dublin amsterdam brussels vienna prague budapest warsaw athens
istanbul moscow kyiv stockholm oslo copenhagen helsinki reykjavik zurich geneva munich hamburg frankfurt
milan naples venice florence barcelona seville porto lyon marseille nice edinburgh manchester liverpool
birmingham glasgow tokyo osaka kyoto seoul busan beijing shanghai shenzhen guangzhou taipei manila jakarta
bangkok hanoi singapore mumbai delhi bangalore bengaluru chennai kolkata karachi lahore dhaka kathmandu
dubai doha riyadh tehran baghdad cairo nairobi lagos accra casablanca marrakech tunis algiers johannesburg
sydney melbourne brisbane perth auckland wellington toronto vancouver montreal ottawa calgary boston chicago
houston dallas austin denver seattle portland atlanta miami orlando phoenix detroit philadelphia washington
baltimore pittsburgh nashville minneapolis honolulu anchorage havana lima bogota santiago caracas quito
mexico_city new_york los_angeles san_francisco san_diego las_vegas new_orleans rio_de_janeiro sao_paulo
buenos_aires cape_town tel_aviv abu_dhabi kuala_lumpur ho_chi_minh salt_lake_city
alabama alaska arizona arkansas california colorado connecticut delaware florida hawaii idaho illinois
indiana iowa kansas kentucky louisiana maine maryland massachusetts michigan minnesota mississippi missouri
montana nebraska nevada ohio oklahoma oregon pennsylvania tennessee texas utah vermont virginia wisconsin
wyoming bavaria catalonia ontario quebec
europe asia africa america antarctica oceania
mercury venus earth mars jupiter saturn uranus neptune pluto moon sun
""")

NATURAL_LANGUAGES = _words("""
english french german spanish italian portuguese dutch swedish norwegian danish finnish icelandic polish
czech slovak hungarian romanian bulgarian greek turkish russian ukrainian arabic hebrew persian farsi urdu
hindi bengali punjabi tamil telugu marathi gujarati chinese mandarin cantonese japanese korean vietnamese
thai indonesian malay tagalog filipino swahili latin esperanto catalan basque welsh irish croatian serbian
""")

PROGRAMMING = _words("""
python java javascript typescript kotlin swift rust go golang ruby php perl scala haskell elixir erlang
clojure lua julia matlab fortran cobol pascal dart groovy objective-c c c++ c# f# r bash zsh shell
powershell sql tsql plsql graphql html css sass scss solidity assembly wasm webassembly ocaml zig nim
crystal prolog lisp scheme racket vba visual_basic
numpy pandas polars scipy matplotlib seaborn plotly bokeh sklearn scikit-learn pytorch torch tensorflow
keras jax transformers datasets tokenizers diffusers accelerate peft langchain llamaindex openai anthropic
litellm spacy nltk gensim opencv pillow requests httpx aiohttp urllib axios fetch jquery lodash
react vue angular svelte nextjs next.js nuxt node node.js nodejs deno bun express nestjs django flask
fastapi starlette pyramid rails laravel symfony spring springboot hibernate dotnet .net asp.net blazor
pydantic sqlalchemy alembic celery pytest unittest jest mocha vitest cypress playwright selenium
docker kubernetes k8s helm terraform ansible puppet chef vagrant nginx apache caddy traefik
redis memcached postgres postgresql mysql mariadb sqlite mongodb cassandra dynamodb elasticsearch
opensearch kafka rabbitmq spark hadoop airflow dbt snowflake bigquery clickhouse neo4j supabase firebase
git github gitlab bitbucket jenkins circleci travis webpack vite babel eslint prettier npm yarn pnpm pip
conda poetry cargo maven gradle cmake make bazel linux ubuntu debian fedora centos windows macos mac ios
android unix freebsd excel word powerpoint outlook chrome firefox safari edge vscode vim emacs intellij
pycharm jupyter colab aws azure gcp s3 ec2 lambda heroku vercel netlify cloudflare jwt json_web_token
oauth
""")

# Acronyms of everyday technical nouns: used as a modifier ("an HTTP status code") they name no one
# thing, so a text that says "a 201 status code" without it asks the same.
GENERIC_ACRONYMS = _words("""
http https ftp api apis url urls uri rest cpu gpu tpu ram rom ssd hdd os ui ux id ids faq dns tcp udp
ip ssh ssl tls vpn lan wan cli gui ide sdk orm cdn db ml ai llm llms nlp pdf smtp imap
""")

ORGANISATIONS = _words("""
apple google alphabet microsoft amazon meta facebook instagram whatsapp twitter tiktok snapchat linkedin
netflix spotify uber lyft airbnb tesla spacex nvidia intel amd ibm oracle sap salesforce adobe samsung
sony lg huawei xiaomi nokia ericsson toyota honda nissan ford bmw audi volkswagen mercedes porsche ferrari
boeing airbus paypal visa mastercard stripe shopify ebay alibaba tencent baidu openai anthropic deepmind
youtube reddit wikipedia slack zoom discord dropbox notion atlassian jira trello asana figma canva
chase barclays hsbc citibank wells_fargo goldman_sachs nasa fifa nba nfl unesco who nato
""")

NAMED_ENTITIES = COUNTRIES | PLACES | NATURAL_LANGUAGES | PROGRAMMING | ORGANISATIONS

# Short names that mean the same thing as a longer one ("JS" is JavaScript).
ALIASES: dict[str, str] = {
    "js": "javascript", "ts": "typescript", "py": "python", "k8s": "kubernetes", "postgres": "postgresql",
    "golang": "go", "mac": "macos", "osx": "macos", "json_web_token": "jwt",
}

# A word and its opposite: a pair that differs only in these asks for a different answer.
OPPOSITES: tuple[tuple[str, str], ...] = tuple(
    tuple(pair.split("/"))  # type: ignore[misc]
    for pair in _list("""
install/uninstall enable/disable encrypt/decrypt encode/decode add/remove create/delete start/stop
open/close upload/download import/export push/pull buy/sell increase/decrease compress/decompress
serialize/deserialize lock/unlock connect/disconnect login/logout show/hide include/exclude max/min
maximum/minimum first/last upper/lower uppercase/lowercase ascending/descending left/right north/south
east/west read/write input/output send/receive before/after above/below inside/outside rise/fall
rise/drop gain/lose win/lose pros/cons advantages/disadvantages benefits/drawbacks strengths/weaknesses
faster/slower fast/slow fastest/slowest quicker/slower cheaper/expensive cheapest/expensive
bigger/smaller larger/smaller biggest/smallest largest/smallest higher/lower highest/lowest more/less
more/fewer most/least better/worse best/worst longer/shorter longest/shortest short/long
older/younger oldest/youngest heavier/lighter stronger/weaker hotter/colder warmer/cooler
increase/reduce raise/lower grow/shrink expand/collapse zoom_in/zoom_out turn_on/turn_off
log_in/log_out sign_in/sign_out sign_up/sign_out inbound/outbound incoming/outgoing import/export
positive/negative true/false yes/no success/failure valid/invalid safe/unsafe legal/illegal
supported/unsupported allowed/forbidden public/private online/offline internal/external
formal/casual formal/informal simple/complex beginner/advanced beginner/expert early/late
today/tomorrow today/yesterday tomorrow/yesterday tonight/tomorrow morning/evening day/night
last/next previous/next past/future before/after required/optional mandatory/optional
mutable/immutable same/different visible/hidden possible/impossible lossless/lossy sync/async
synchronous/asynchronous stateful/stateless work/fail keep/delete keep/discard allow/prohibit
allowed/prohibited permitted/prohibited kept/deleted kept/discarded modify/read-only modified/read-only
writable/read-only""")
)

# What a user asks the answer to look like.
FORMATS: dict[str, str] = {
    **_alias("json jsonl ndjson", "json"),
    **_alias("yaml yml", "yaml"),
    **_alias("csv tsv", "csv"),
    "xml": "xml", "html": "html", "toml": "toml", "sql": "sql", "latex": "latex",
    **_alias("markdown md", "markdown"),
    **_alias("table tables tabular", "table"),
    **_alias("bullet bullets bulleted bullet_points bullet_list", "bullets"),
    **_alias("numbered_list numbered", "numbered"),
    **_alias("paragraph paragraphs prose", "paragraph"),
    **_alias("haiku haikus", "haiku"),
    **_alias("poem poems poetry verse", "poem"),
    **_alias("sonnet sonnets", "sonnet"),
    **_alias("limerick limericks", "limerick"),
    **_alias("essay essays", "essay"),
    **_alias("tweet tweets", "tweet"),
    **_alias("email emails e-mail letter", "letter"),
    "press_release": "press_release",
    **_alias("chart graph plot diagram bar_chart", "chart"),
    **_alias("story stories", "story"),
    **_alias("song lyrics", "song"),
    **_alias("plain_text plaintext", "plain"),
    **_alias("one_line single_line one-line one-liner oneliner tl;dr tldr", "one_line"),
    "one_word": "one_word", "one_sentence": "one_sentence", "one_paragraph": "paragraph",
    **_alias("in_detail detailed in_depth thorough technical technical_detail", "detailed"),
    **_alias("simple_terms plain_english layman layman's_terms", "simple"),
    **_alias("eli5 like_i'm_five like_im_five", "eli5"),
}

# Words that negate what follows (contractions are split to "n't" first): the next content
# words, up to the end of the clause, are read as negated.
NEGATIONS = _words("""
not no never none nobody nothing nowhere neither nor without cannot n't non absence absent lack lacking
lacks unable unless
""")
# Adjectives that negate their own stem: "unused" says "not used".
NEGATED_ADJECTIVES: dict[str, str] = {
    "unused": "used", "unchanged": "changed", "unmodified": "modified", "untouched": "touched",
}
# Words that look like "un-" or "-less" words but negate nothing.
NOT_AFFIXED = _words("""
unless unix unity unison unleash unravel unbox unlike unfold unveil unparalleled unprecedented
nevertheless nonetheless regardless doubtless endless countless seamless effortless timeless harmless
pointless careless reckless relentless ruthless hopeless restless priceless flawless tireless spotless
needless
""")
# Verbs that keep something from happening: "avoid X", "prevent X", "stop X", "quit X", "skip X".
# Two texts that each hold one of them may word the same thing differently ("prevent overfitting",
# "how do I stop it"), so what they govern counts as negated only against a text that holds none.
PREVENTING = _words("""
avoid avoids avoided avoiding prevent prevents prevented preventing stop stops stopped stopping quit quits
quitting skip skips skipped skipping cease ceases refrain keep keeps keeping ignore ignores ignored ignoring
""")
# Verbs that negate when a "from" follows: "stop it from overfitting", "keep them from leaking"
# ("keep" alone means the opposite: it negates only with a "from").
NEGATING_FROM = _words("stop stops stopping stopped keep keeps keeping kept prevent prevents prevented preventing")
# Verbs that negate the verb after their "to": "refuses to authorize", "fails to load".
NEGATING_TO = _words("refuse refuses refused refusing fail fails failed failing")
# Words right after "not"/"no" that make it no negation: "not only", "not just", "no matter".
NOT_NEGATING = _words("only just merely simply matter")
# "does not handle it well" says what "handles it poorly" says.
DONE_WELL = _words("well efficiently properly correctly reliably")
DONE_BADLY = _words("poorly inefficiently badly incorrectly improperly unreliably")
# Words that limit or deny in other words: a text holding one says what a negation says, so
# "cannot be modified" / "is read-only" and "not saved unless -u" / "only saved with -u" are not
# refused as "one text negates, the other does not" (a negated word said plainly still is).
RESTRICTING = _words("""
only solely exclusively except unless instead rather maximum max limit limited absent lack lacks
lacking missing unnecessary needless inefficient inefficiently poorly read-only readonly untracked
prohibited forbidden deprecated omitted outside impossible unable discontinued""")
# Words a negation reaches past to the words it negates ("not a valid", "never be compiled").
SCOPE_SKIP = _words("""
a an the of to in on at by for from with as into this these those there here it its is are was were be
been being am do does did have has had i me my you your we us our they them their he him his she her
can could would should will shall may might must very really quite always even ever yet also too still
any some all longer more one ones anything something else first ever necessarily actually exactly
entirely fully completely directly explicitly properly correctly
""")
AUXILIARIES = _words("do does did is are was were can could will would should shall has have had must may might")
QUESTION_WORDS = _words("why how what when where which who whom whose")
# Words that end the reach of a negation: "leaves that are not oxidized and taste fresh".
CLAUSE_WORDS = _words("""
and or but yet so while when whereas because if then which that who whom where although though unless
until since than
""")

UNITS: dict[str, str] = {
    **_alias("km kms kilometer kilometers kilometre kilometres", "km"),
    **_alias("m meter meters metre metres", "m"),
    **_alias("cm centimeter centimeters centimetre centimetres", "cm"),
    **_alias("mm millimeter millimeters millimetre millimetres", "mm"),
    **_alias("mi mile miles", "mile"),
    **_alias("ft foot feet", "ft"),
    **_alias("in inch inches", "inch"),
    **_alias("yd yard yards", "yard"),
    **_alias("kg kgs kilogram kilograms kilo kilos", "kg"),
    **_alias("g gram grams", "g"),
    **_alias("mg milligram milligrams", "mg"),
    **_alias("lb lbs pound pounds", "lb"),
    **_alias("oz ounce ounces", "oz"),
    **_alias("ton tons tonne tonnes", "ton"),
    **_alias("l liter liters litre litres", "l"),
    **_alias("ml milliliter milliliters millilitre millilitres", "ml"),
    **_alias("gal gallon gallons", "gallon"),
    **_alias("qt quart quarts", "quart"),
    **_alias("pint pints", "pint"),
    **_alias("cup cups", "cup"),
    **_alias("tbsp tablespoon tablespoons", "tbsp"),
    **_alias("tsp teaspoon teaspoons", "tsp"),
    **_alias("°c celsius centigrade", "celsius"),
    **_alias("°f fahrenheit", "fahrenheit"),
    "kelvin": "kelvin",
    **_alias("ms millisecond milliseconds", "ms"),
    **_alias("s sec secs second seconds", "second"),
    **_alias("min mins minute minutes", "minute"),
    **_alias("h hr hrs hour hours", "hour"),
    **_alias("day days", "day"),
    **_alias("week weeks", "week"),
    **_alias("month months", "month"),
    **_alias("year years", "year"),
    "mph": "mph", **_alias("kph kmh km/h", "kmh"),
    **_alias("b byte bytes", "byte"), **_alias("bit bits", "bit"),
    **_alias("px pixel pixels", "px"), **_alias("token tokens", "token"),
    **_alias("char chars character characters", "character"),
    **_alias("word words", "word"), **_alias("line lines", "line"),
    **_alias("kb kilobyte kilobytes", "kb"), **_alias("mb megabyte megabytes", "mb"),
    **_alias("gb gigabyte gigabytes", "gb"), **_alias("tb terabyte terabytes", "tb"),
    **_alias("$ usd dollar dollars", "usd"), **_alias("€ eur euro euros", "eur"),
    **_alias("£ gbp sterling", "gbp"), **_alias("¥ jpy yen", "jpy"),
    **_alias("inr rupee rupees", "inr"), **_alias("cny yuan rmb", "cny"),
    **_alias("chf franc francs", "chf"), **_alias("btc bitcoin", "btc"),
    "%": "percent", "percent": "percent", "percentage": "percent",
    **_alias("w watt watts", "watt"), **_alias("kw kilowatt kilowatts", "kw"),
    "kwh": "kwh", **_alias("v volt volts", "volt"),
    **_alias("hz hertz", "hz"), "ghz": "ghz", "mhz": "mhz",
    **_alias("calorie calories kcal", "kcal"), **_alias("acre acres", "acre"),
    **_alias("hectare hectares", "hectare"),
}
# Units of text length: counted only right after a number ("512 tokens" / "512 characters").
COUNT_UNITS = frozenset({"token", "character", "word", "line"})
# Unit words too common in plain English to count when written alone without a number.
WEAK_UNITS = frozenset({"m", "s", "g", "h", "b", "l", "w", "v", "in", "min", "second", "day", "week", "month",
                        "year", "cup", "lb", "franc", "percent"})

DATES: dict[str, str] = {
    **{m: m[:3] for m in _list("january february march april may june july august september october november "
                               "december")},
    **{d: d[:3] for d in _list("monday tuesday wednesday thursday friday saturday sunday")},
    **{d + "s": d[:3] for d in _list("monday tuesday wednesday thursday friday saturday sunday")},
    **_alias("today tonight", "today"), "tomorrow": "tomorrow", "yesterday": "yesterday",
    "weekend": "weekend", "weekday": "weekday", "weekdays": "weekday", "morning": "morning",
    "afternoon": "afternoon", "evening": "evening", "night": "night",
    "spring": "spring", "summer": "summer", "autumn": "autumn", "fall": "autumn", "winter": "winter",
}
# "may" and "march" are verbs more often than months unless a number or "in" stands beside them.
AMBIGUOUS_DATES = frozenset({"may", "march", "fall", "spring", "second"})

NUMBER_WORDS: dict[str, float] = {
    "zero": 0, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1e3,
    "million": 1e6, "billion": 1e9, "trillion": 1e12, "dozen": 12, "half": 0.5, "quarter": 0.25,
    "double": 2, "twice": 2, "triple": 3, "thrice": 3,
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "twelfth": 12, "hundredth": 100,
}
ROMAN = {"ii": 2, "iii": 3, "iv": 4, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "xi": 11, "xii": 12, "xiii": 13,
         "xiv": 14, "xv": 15, "xvi": 16, "xx": 20}

ORDINALS = frozenset({"first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
                      "tenth", "twelfth", "hundredth"})
DETERMINERS = frozenset({"the", "a", "an", "its", "their", "my", "his", "her", "our", "your", "this", "that"})

# Function words ignored when two texts are compared word by word.
STOPWORDS = _words("""
a an the of to in on at by for from with about as into onto over under and or but if then so than that
this these those there here it its it's is are was were be been being am do does did doing done have has
had having i me my mine you your yours we us our ours they them their he him his she her hers what which
who whom whose when where why how can could would should will shall may might must please tell give show
let get explain describe know need want like just also any some all each every much many very really
really quite there's what's how's let's i'm i'd i've you're way best good use using used make made
""")

# Names that are also everyday words: they count as names only when written with a capital
# letter inside a sentence, or right after a preposition ("in go", "with requests").
AMBIGUOUS_NAMES = _words("""
go c r make fetch requests datasets transformers tokenizers accelerate word excel edge outlook express
spring chef puppet lambda zoom visa sun moon earth mercury windows mac turkey georgia jordan chad nice
apple amazon shell bash swift rust ruby dart julia crystal scheme racket pascal lisp assembly node torch
bun helm spark airflow snowflake slack notion who meta oracle chrome safari pillow celery playwright
make pip yarn poetry cargo maven word china guinea niger mali peru chile vue react angular
express next datasets jupiter pluto venus mars saturn sol cypress jest mocha vite babel prettier
""")
PREPOSITIONS = _words("with in using via on for from into under of at by")
