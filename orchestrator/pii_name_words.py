"""The small word lists of person-name detection: cues around a name and words that
never are one (lowercase; see ``orchestrator.pii_names``)."""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


HONORIFICS = _words(
    """
    dr mr mrs ms miss mx prof sir dame lady lord herr frau mme mlle monsieur madame dhr
    mevr sr sra srta dott uncle aunt auntie grandma grandpa cousin
    """
)
GREETINGS = _words(
    """
    dear hi hello hey hiya hallo bonjour salut beste liebe lieber cher chère ciao hola
    thanks thank cheers regards love best yours sincerely
    """
)
SIGN_OFF_WORDS = _words("best love yours regards sincerely")
# Verbs that take a person: one capitalised word after them is a name ("ask Tobias").
PERSON_VERBS = _words(
    """
    email e-mail call phone ring text message tell ask remind meet met invite thank cc bcc
    ping reach
    """
)
# Before a two-word capitalised run: someone is being written to, called or met.
ADDRESS_VERBS = PERSON_VERBS | _words(
    """
    mail meeting contact visit see pay paid married marry dating date introduce with
    from to by for and named called signed send forward give show
    """
)
# After them a lowercase word that is no English word is a name ("ask tolu", "with
# wanjiku", "is olumide coming?").
LOWER_CUES = PERSON_VERBS | _words(
    "with and tell told asked called texted emailed pinged thanked hi hello hey dear thanks cheers"
)
# Starting a question, before a lowercase word no dictionary knows: "is olumide home?"
LOWER_QUESTION_CUES = _words("is was has did does can will could would should")
# Words that make a capitalised word after them a place or a thing, unless the word is a
# listed name ("in Kathmandu", "the Louvre").
DETERMINERS = _words("the a an this that these those our my your their his her its")
LOCATIVES = _words(
    """
    in at near around across inside outside into onto towards toward via throughout
    visiting visited visit
    """
)
# Before "to" / "from": the capitalised word after is a place ("moving to Haifa").
TRAVEL_WORDS = _words(
    """
    travel travels travelling traveling travelled traveled trip flight flights fly flies
    flying flew flown move moves moving moved relocate relocating relocated go goes going
    went gone drive drives driving drove ride riding commute commuting return returns
    returning returned back postcard postcards arrive arrives arriving arrived land lands
    landed landing in way road train bus trains buses
    """
)
# The word after these in a capitalised run names a place ("New York", "San Francisco").
PLACE_PREFIXES = _words("new san santa são los las saint st mount mt lake port fort cape")
# Capitalised words that do not name a person, even after a cue.
NOT_NAMES = _words(
    """
    team all everyone everybody sir sirs madam madame customer customers friends friend
    there world colleagues folks guys both you again so ok okay yes no please the a an
    monday tuesday wednesday thursday friday saturday sunday january february march
    april may june july august september october november december today tomorrow
    yesterday tonight new san santa los las saint st mount lake north south east west
    upper lower great customer service support sales accounting finance hr it team
    office department university college school hospital bank street road avenue city
    town county google microsoft apple amazon facebook meta netflix linkedin github slack
    zoom teams python java rust linux windows excel word outlook gmail iphone android
    whatsapp youtube instagram twitter tiktok spotify uber tesla ikea samsung sony nokia
    inc ltd llc gmbh corp co group news studio studios services systems labs
    technologies foundation institute airlines motors media press records partners i
    i'm i'll i've i'd we our my your his her their its this that these those what who
    when where why how which if then but or and also just not god christmas easter
    ramadan diwali eid hanukkah thanksgiving halloween ai api faq pdf url he she they
    him them us me mine yours hers ours theirs he's she's it's iban bic swift pin
    """
)
# Nationalities and languages (capitalised in English, never a person here).
DEMONYMS = _words(
    """
    english british scottish welsh irish american canadian mexican brazilian argentine
    argentinian chilean peruvian colombian venezuelan cuban french german dutch belgian
    swiss austrian spanish catalan basque portuguese italian greek turkish russian
    ukrainian polish czech slovak hungarian romanian bulgarian serbian croatian bosnian
    slovenian albanian swedish norwegian danish finnish icelandic estonian latvian
    lithuanian chinese japanese korean vietnamese thai filipino indonesian malay
    malaysian indian pakistani bangladeshi nepali sri lankan persian iranian iraqi
    syrian lebanese israeli jewish arab arabic egyptian moroccan algerian tunisian
    nigerian ghanaian kenyan ethiopian somali sudanese south african zulu xhosa yoruba
    igbo hausa swahili amharic hindi urdu bengali punjabi tamil telugu marathi gujarati
    mandarin cantonese hebrew latin european asian african australian kiwi maori
    hawaiian samoan tongan fijian muslim hindu buddhist catholic protestant
    """
)
# After a name: its verb ("Hope said", "Will called"), so a name that is also an
# everyday word at the start of a sentence reads as a name.
_VERB_BASES = """
    say tell ask want need think know call send write email text bring take make get give
    leave come go arrive land fly drive ride walk run join host cook bake plan book buy
    sell pay owe lend borrow fix repair paint build clean help finish start stop win lose
    miss forget remember love like hate hope believe agree disagree sign approve reject
    review read check confirm cancel reply answer phone ring meet visit live work play sing
    dance teach learn study move travel stay visit wait look seem feel sound laugh cry smile
    share post present lead manage organise organize chair speak talk explain mention
    suggest recommend offer invite thank found find lose see hear watch keep hold put set
    open close turn try use pick order owe marry adopt retire graduate quit lend own
    """
_IRREGULAR = """
    said told asked thought knew sent wrote brought took made got gave left came went
    flew drove rode ran won lost forgot bought sold paid lent built found saw heard kept
    held put set taught spoke led met read felt began begun sang understood wore
    """
_AUXILIARIES = """
    is was are were has had have will would can could should shall might must does did
    isn't wasn't hasn't hadn't won't wouldn't can't couldn't shouldn't doesn't didn't
    just also never always still already really finally
    """


def _verb_forms() -> frozenset[str]:
    out = set(_IRREGULAR.split()) | set(_AUXILIARIES.split())
    for v in _VERB_BASES.split():
        out.add(v + "es" if v.endswith(("s", "sh", "ch", "x", "o")) else v[:-1] + "ies" if v.endswith("y") and v[-2] not in "aeiou" else v + "s")
        if v.endswith("e"):
            out.add(v + "d")
        elif v.endswith("y") and v[-2] not in "aeiou":
            out.add(v[:-1] + "ied")
        else:
            out.add(v + "ed")
    return frozenset(out)


VERBS_AFTER = _verb_forms()
# Verbs that start an imperative: "Send Mehmet Yilmaz ...", "Congratulate ..." is not one.
VERB_BASES = frozenset(_VERB_BASES.split()) | ADDRESS_VERBS | _words(
    """
    congratulate wish greet welcome notify inform warn update introduce hug tag follow
    collect drop pick thank forgive support encourage remind ping cc bcc
    """
)
# Joining words: "Faith and Grace", "Fatou & Mamadou".
JOINERS = _words("and & or")
# World capitals, large cities and regions (English names): a place unless a person
# cue says otherwise ("in Paris", but "Paris said", "ask Sofia").
PLACES = _words(
    """
    kabul tirana algiers andorra luanda buenos aires yerevan canberra vienna baku nassau
    manama dhaka bridgetown minsk brussels belmopan porto novo thimphu sucre sarajevo
    gaborone brasilia sofia ouagadougou gitega phnom penh yaounde ottawa praia bangui
    ndjamena santiago beijing bogota moroni kinshasa brazzaville san jose zagreb havana
    nicosia prague copenhagen djibouti roseau santo domingo quito cairo malabo asmara
    tallinn mbabane addis ababa suva helsinki paris libreville banjul tbilisi berlin
    accra athens guatemala conakry bissau georgetown haiti tegucigalpa budapest reykjavik
    delhi jakarta tehran baghdad dublin jerusalem rome kingston tokyo amman astana
    nairobi tarawa pristina kuwait bishkek vientiane riga beirut maseru monrovia tripoli
    vaduz vilnius luxembourg antananarivo lilongwe kuala lumpur male bamako valletta
    majuro nouakchott mexico palikir chisinau monaco ulaanbaatar podgorica rabat maputo
    naypyidaw windhoek kathmandu amsterdam wellington managua niamey abuja pyongyang skopje
    oslo muscat islamabad panama moresby asuncion lima manila warsaw lisbon doha
    bucharest moscow kigali castries kingstown apia riyadh dakar belgrade victoria
    freetown singapore bratislava ljubljana honiara mogadishu pretoria seoul juba madrid
    colombo khartoum paramaribo stockholm bern damascus taipei dushanbe dodoma bangkok
    dili lome tunis ankara ashgabat funafuti kampala kyiv kiev abu dhabi dubai london
    washington montevideo tashkent caracas hanoi sanaa lusaka harare
    new york los angeles chicago houston phoenix philadelphia dallas austin seattle
    boston denver atlanta miami detroit orlando vegas toronto montreal vancouver sydney
    melbourne brisbane perth adelaide auckland manchester liverpool birmingham leeds
    glasgow edinburgh cardiff belfast bristol oxford cambridge hamburg munich cologne
    frankfurt stuttgart zurich geneva milan naples turin florence venice barcelona
    valencia seville bilbao porto lyon marseille nice bordeaux toulouse antwerp rotterdam
    utrecht gothenburg krakow istanbul izmir st petersburg shanghai shenzhen guangzhou
    chengdu hong kong osaka kyoto nara sapporo yokohama busan mumbai bangalore chennai
    kolkata hyderabad karachi lahore lagos johannesburg cape town casablanca marrakech
    alexandria jeddah mecca medina rio janeiro paulo bahia tartu galway haifa tel aviv
    california texas florida georgia carolina virginia jordan chad israel kent york
    europe asia africa america oceania antarctica siberia sahara amazon nile danube
    thames rhine alps himalaya himalayas andes everest kilimanjaro
    """
)
