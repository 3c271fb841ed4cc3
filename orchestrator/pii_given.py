"""A small built-in list of given names, used when the full name lists are missing.

Given names common across English, German, Dutch, French, Spanish, Italian, Nordic and
other languages, leaving out the ones that are everyday English words (Will, May,
Rose, Mark, ...). The detector uses ``orchestrator.pii_lexicon`` (Faker's lists of about
80 locales) when the packages are installed; this list keeps cue-based detection useful
without them.
"""

from __future__ import annotations

GIVEN: frozenset[str] = frozenset(
    """
    aaron abdul abigail adam adrian agnes ahmed aisha alan albert alejandro alex alexander
    alexandra alfred ali alice alicia alison amanda amelia amir amy ana andrea andreas
    andrew andy angela anna anne annika anthony antoine antonio arjun arne astrid axel
    barbara beatrice ben benjamin bernard bernd bjorn björn brian bruno camille carla
    carlos carmen caroline catherine cecilia charles charlotte chen chloe christian
    christina christine christopher claire clara claude claudia colin conor daniel daniela
    dana david deborah denise dennis diana diego dimitri dmitri dominik dominique donna
    dorothy edward eleanor elena elif elisabeth elizabeth ella emil emily emma enrique eric
    erik esther ethan eva fabian fatima felix fernando filip fiona florian francesca
    francesco françois frederik gabriel gabriele george georg gerard gerhard giulia
    giuseppe greta gustav hannah hans harald harry halvard heinrich helen helena helga
    henrik henry hugo ian ibrahim ilse ines ingrid irene isabel isabella isabelle ivan
    jakob james jan jana jane janet jasper javier jean jennifer jens jeroen jessica joan
    johan johanna johannes john jonas jonathan jorge josé joseph josef juan julia julian
    julie jürgen karen karin karl katarina katharina kathleen katie kevin klaus kristin
    lars laura lauren laurent lea leila lena leon linda lisa lorenzo louis louise lucas
    lucia luis luka lukas magnus manuel marco margaret margarethe maria marie marina mario
    marisol martha martin mary mathias matteo matthew matthias maximilian mehmet melanie
    mia michael michel michelle miguel mikhail mohamed mohammed monika nadia natalia
    nathalie nicolas nicole niels nikolai nina noah nora oliver olga olivia omar oscar
    pablo patrick paul paula pedro peter petra philip philippe pierre pieter priya priyanka
    rachel rafael raphael rebecca richard robert roberto rodrigo rosa ruth samuel sandra
    sara sarah sebastian sergei sergio simon simone sofia sophie stefan stefanie stephanie
    steven susan svetlana sven tanja thomas tim timothy tobias tomas tomás ursula valentina
    vanessa vera veronica viktor vincent walter wei wolfgang xavier yasmin yusuf zahra zoe
    """.split()  # noqa: SIM905
)
