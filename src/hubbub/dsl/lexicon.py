"""Closed word classes and verbs: enough English to find the nouns in an app description.

Anything not listed here is taken for a noun, which is right for the words that
matter (``posts``, ``warehouses``, ``check-ins``); words that can be both noun
and verb (``post``, ``order``, ``book``) are in ``AMBIGUOUS`` and decided by
their neighbours in ``chunk.py``.
"""

from __future__ import annotations


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


DETERMINERS = _set(
    "a an the each every any some its their his her my our your this these those another one "
    "all both either neither no its"
)
QUANTIFIERS = _set("many multiple several various numerous more lots few")
PRONOUNS = _set(
    "i we you they it he she them us me someone anyone everyone everybody somebody nobody who whom "
    "which what whoever something anything everything nothing themselves itself myself ourselves yourself there "
    "i'm we're you're they're it's i'll we'll i've we've there's here"
)
PREPOSITIONS = _set(
    "with to of for in on at by from into about between per under over within without through via across "
    "after before as like against onto inside among around up down out off along beside near than until "
    "upon toward towards"
)
CONJUNCTIONS = _set("and or but nor plus then so while whereas although though because if when where whether whenever")
MODALS = _set("can could should would will must may might shall cannot can't won't wouldn't shouldn't")
AUXILIARIES = _set(
    "is are was were be been being am do does did done get gets got gotten isn't aren't wasn't weren't "
    "don't doesn't didn't"
)
HAVE = _set("has have had having")
NEGATIONS = _set("not no never don't doesn't didn't isn't aren't won't shouldn't can't cannot nor")
INTERJECTIONS = _set(
    "thanks thank thx ty hi hello hey ok okay yes yeah yep yup no nope sure great cool awesome please sorry wow "
    "nice perfect alright lgtm hmm oh ah well"
)
ADVERBS = INTERJECTIONS | _set(
    "also only just optionally always usually then too very really already still actually probably maybe "
    "now later instead directly typically normally often sometimes generally mostly even simply basically "
    "perhaps possibly ideally exactly altogether together else again automatically easily quickly "
    "optional necessarily currently finally first back away"
)
ADJECTIVES = _set(
    "new old active optional unique required simple basic main different own public private single online "
    "personal specific important certain other same small big large little great good nice simple custom "
    "full short long daily weekly monthly yearly annual given separate additional extra various internal "
    "external local global general free paid total current previous next last primary secondary real "
    "digital physical social mobile whole entire particular related multiple closed available "
    "possible individual existing upcoming recent favourite handmade shared several such "
    "scheduled due usual initial final typical standard regular responsible eligible unavailable"
)
NUMBERS = _set("zero one two three four five six seven eight nine ten hundred thousand")
# Words ending in -ly that are not adverbs.
NOT_ADVERBS = _set("family supply reply assembly rally ally belly jelly bully butterfly monopoly anomaly "
                   "italy july apply comply multiply")
RELATIVES = _set("that which who whose where when how why")

# Verbs (base forms). Inflections are generated below.
VERBS = _set(
    "need want build create make manage track store keep allow let use include contain hold add remove "
    "drop delete rename change call write publish place submit upload own log record open raise host "
    "organize organise send run rent borrow buy purchase reserve enroll enrol attend apply hire follow "
    "favorite bookmark save join subscribe watch star upvote vote rate review reply leave give get see view "
    "browse search find sell offer assign belong reference relate connect associate schedule plan teach "
    "take work live happen occur pay receive share invite choose select pick set mark categorize group "
    "sort filter edit update cancel complete finish start end sign register login access check visit play "
    "listen read cook eat drive ship deliver return expire cost require support represent describe mean "
    "show display notify remind approve reject accept bill charge earn spend measure consist compose bring "
    "do go come become like love prefer sit move handle process generate export import sync integrate "
    "authenticate comment post order book list tag link rename split merge replace turn convert keep "
    "forget skip lose say think know help sell stock chat message collect gather capture note write "
    "design draft invoice lend report answer ask provide serve manage mention sort put contact "
    # Verbs of other domains (issue 20: an unknown word is taken for a noun, so a verb missing here
    # hides a whole clause: "landlords own buildings", "pharmacists fill prescriptions").
    "inspect roast brew fill install retain cite usher adopt scan plant harvest water feed treat diagnose "
    "prescribe operate repair maintain wash pack decline verify confirm occupy broadcast stream produce cast "
    "perform rehearse compete win beat draw coach train mentor tutor study learn practice test examine survey "
    "observe spot catch grow breed acquire loan donate fund sponsor pledge bid trade swap exchange transfer "
    "deposit withdraw refund quote estimate weigh count tally rank respond question claim flag poll elect "
    "nominate endorse recommend suggest propose email text meet enter exit arrive depart travel commute ride "
    "fly walk hike swim climb dock park unlock lock print copy archive label classify arrange reschedule "
    "postpone allocate delegate employ recruit interview supervise oversee carry transport supply source "
    "attach embed unsubscribe block mute ban moderate revise translate summarize illustrate code deploy "
    "release launch monitor audit certify license graduate assess evaluate judge referee officiate bake "
    "prepare drink bottle age co-author coauthor cover fix match own look stand favourite pair "
    "achieve admit advise afford agree announce appear appoint argue assist assume attract avoid begin "
    "believe bend bind blow boil bother breathe burn calculate celebrate chase combine compare complain "
    "concentrate conclude conduct consider construct consult continue contribute convince decide declare "
    "decorate defeat defend define deny depend deserve destroy detect determine develop die differ dig "
    "disagree disappear discover discuss dislike distribute divide download drag educate eliminate emerge "
    "enable encourage enforce engage enhance enjoy ensure equip escape establish exceed exist expand "
    "expect explain explore express extend fail feel fetch fit fold forbid forgive freeze gain govern "
    "grab greet guarantee guess hang hate hear hide hit hope hunt hurry hurt identify ignore imagine "
    "implement impose improve indicate influence inform inherit injure insist intend interact interpret "
    "interrupt introduce invent invest investigate involve jump kick kill kiss knock laugh lean lift "
    "locate marry melt modify negotiate notice obtain participate persuade possess pour practise pray "
    "predict preserve prevent proceed promise promote pronounce protect prove pull punish push qualify "
    "quit reach react realise realize recognise recognize recover reduce refer reflect refuse regard "
    "relax rely remain remember renew repeat rescue resign resist resolve restore restrict retire reveal "
    "rise sail seek seem separate settle shake shine shoot shut sing sink sleep slip smell solve speak "
    "spread stay stick strike succeed suffer suppose surround survive suspect thank throw transform try "
    "understand undertake unite urge vary wait wake warn wear welcome wonder worry wrap break file "
    "catalog catalogue act attempt bet bite cause control crash cut damage dance delay demand doubt dream "
    "dress experience fall fight focus force grade grant guard guide heat highlight increase issue lead "
    "load limit paint pass permit progress race request research result reward risk shop ski smile switch "
    "talk taste tour upgrade wish score break file catalog base care ring sew sow weave spin sweep slide sting "
    "swing shrink lay churn"
)
# Words that are nouns as often as verbs in app descriptions.
AMBIGUOUS = _set(
    "post order book review comment reply like rate tag schedule list plan ship file report message log note "
    "record rent host follow share cost price name date watch answer check vote visit favorite bookmark "
    "save run play charge bill invoice issue offer return request cook award step change call update design "
    "group stock store mark set sign link access search contact transfer trip exercise upload download "
    "place work end start time claim deal track load ride lead draft chat sort project task event match "
    "score point view lesson answer question class course room table seat level hire taste sale trade "
    "display support answer round open booking listing rating setting meeting training posting recording "
    "reading shipping billing pricing ranking heading saving earning building painting wedding "
    "age archive audit ban bid block bottle cast catch coach copy count cover deposit dock draw drink email "
    "estimate exchange feed fill fix flag fund harvest hike interview judge label launch license loan lock "
    "mentor pack park plant pledge poll print produce quote rank referee refund release repair scan source "
    "spot supply survey swap tally test text train treat tutor walk wash water code stream study practice "
    "look stand "
    "act attempt bet bite cause control crash cut damage dance delay demand doubt dream dress experience "
    "fall fight focus force grade grant guard guide heat highlight increase issue lead load limit paint "
    "pass permit progress race request research result reward risk shop ski smile switch talk taste tour "
    "upgrade wish score break file catalog base care ring spin slide sting swing"
)
IRREGULAR_FORMS = {
    "favourite": "favorite", "favourites": "favorite", "favourited": "favorite", "favouriting": "favorite",
    "wrote": "write", "written": "write", "made": "make", "took": "take", "taken": "take", "gave": "give",
    "given": "give", "bought": "buy", "sold": "sell", "held": "hold", "kept": "keep", "left": "leave",
    "paid": "pay", "sent": "send", "ran": "run", "saw": "see", "seen": "see", "chose": "choose",
    "chosen": "choose", "taught": "teach", "built": "build", "found": "find", "began": "begin",
    "begun": "begin", "came": "come", "became": "become", "went": "go", "gone": "go", "got": "get",
    "brought": "bring", "lent": "lend", "put": "put", "set": "set", "told": "tell", "said": "say",
    "led": "lead", "read": "read", "split": "split", "thought": "think", "knew": "know", "known": "know",
    # the rest of the common irregular past forms: a participle read as a noun ("is shot at a location",
    # "the hours spent") names an entity that is not there
    "shot": "shoot", "spent": "spend", "met": "meet", "won": "win", "drawn": "draw", "drew": "draw",
    "fed": "feed", "grew": "grow", "grown": "grow", "bred": "breed", "caught": "catch", "flew": "fly",
    "flown": "fly", "rode": "ride", "ridden": "ride", "wore": "wear", "worn": "wear", "hung": "hang",
    "hid": "hide", "hidden": "hide", "broke": "break", "broken": "break", "spoke": "speak",
    "spoken": "speak", "stood": "stand", "understood": "understand", "drove": "drive", "driven": "drive",
    "ate": "eat", "eaten": "eat", "fell": "fall", "fallen": "fall", "fought": "fight", "forgot": "forget",
    "forgotten": "forget", "froze": "freeze", "frozen": "freeze", "dug": "dig", "sang": "sing", "sung": "sing",
    "threw": "throw", "thrown": "throw", "woke": "wake", "woken": "wake", "sought": "seek", "struck": "strike",
    "swam": "swim", "slept": "sleep", "felt": "feel", "heard": "hear", "meant": "mean", "dealt": "deal",
    "blew": "blow", "blown": "blow", "bent": "bend", "hurt": "hurt", "cut": "cut",
    "hit": "hit", "shut": "shut", "let": "let", "quit": "quit", "spread": "spread", "cast": "cast",
    "bet": "bet", "bitten": "bite", "risen": "rise", "shook": "shake",
    "shaken": "shake", "shone": "shine", "stuck": "stick", "swore": "swear", "sworn": "swear",
    "tore": "tear", "torn": "tear", "undertook": "undertake", "undertaken": "undertake", "withdrew": "withdraw",
    "withdrawn": "withdraw", "oversaw": "oversee", "overseen": "oversee", "forbade": "forbid",
    "forbidden": "forbid", "forgave": "forgive", "forgiven": "forgive", "rang": "ring", "rung": "ring",
    "sewn": "sew", "sown": "sow", "wove": "weave", "woven": "weave", "spun": "spin", "swept": "sweep",
    "slid": "slide", "stung": "sting", "swung": "swing", "shrank": "shrink", "shrunk": "shrink", "laid": "lay",
}


def _forms(base: str) -> set[str]:
    out = {base}
    if base.endswith("e"):
        out |= {base + "s", base + "d", base[:-1] + "ing"}
    elif base.endswith("y") and base[-2:-1] not in set("aeiou"):
        out |= {base[:-1] + "ies", base[:-1] + "ied", base + "ing"}
    elif base.endswith(("s", "x", "z", "ch", "sh")) or base.endswith("o") and base[-2:-1] not in set("aeiou"):
        # "goes", "does" (but "zoos" is no verb)
        out |= {base + "es", base + "ed", base + "ing"}
    else:
        out |= {base + "s", base + "ed", base + "ing"}
        if len(base) <= 4 and base[-1] in "bdglmnprt" and base[-2] in "aeiou" and base[-3:-2] not in set("aeiou"):
            out |= {base + base[-1] + "ed", base + base[-1] + "ing"}  # ship -> shipped, plan -> planning
    return out


VERB_OF: dict[str, str] = {}
for _base in VERBS:
    for _form in _forms(_base):
        VERB_OF.setdefault(_form, _base)
for _form, _base in IRREGULAR_FORMS.items():
    VERB_OF.setdefault(_form, _base)


def verb_base(word: str) -> str | None:
    """The base form of a verb form (``writes`` -> ``write``), or None."""
    return VERB_OF.get(word)


CLOSED = (
    DETERMINERS | QUANTIFIERS | PRONOUNS | PREPOSITIONS | CONJUNCTIONS | MODALS | AUXILIARIES | HAVE
    | NEGATIONS | ADVERBS | RELATIVES
)
