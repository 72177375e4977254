"""Random themes for batch runs, from curated word lists (``GET /api/themes/random``)."""

from __future__ import annotations

import random

ART_STYLES = (
    "art nouveau",
    "art deco",
    "ukiyo-e woodblock",
    "baroque oil painting",
    "stained glass",
    "watercolor",
    "pixel art",
    "cyberpunk neon",
    "steampunk",
    "gothic",
    "bauhaus poster",
    "psychedelic 1960s poster",
    "medieval illuminated manuscript",
    "low-poly 3D",
    "charcoal sketch",
    "vaporwave",
    "papercut collage",
    "Soviet constructivist",
    "Mughal miniature",
    "pre-Raphaelite",
    "pop art",
    "film noir",
    "solarpunk",
)
SUBJECTS = (
    "clockwork automatons",
    "deep-sea creatures",
    "forest spirits",
    "desert nomads",
    "astronauts",
    "samurai",
    "alchemists",
    "circus performers",
    "cats in costume",
    "botanical specimens",
    "dragons",
    "lighthouse keepers",
    "jazz musicians",
    "mushroom folk",
    "robots",
    "pirates",
    "ballet dancers",
)
PALETTES = (
    "gold and midnight blue",
    "pastel",
    "monochrome ink",
    "jewel tones",
    "sepia",
    "neon pink and teal",
    "earthy ochre",
    "black and crimson",
    "iridescent",
    "muted autumn",
    "silver and pearl",
)
MOODS = ("whimsical", "ominous", "serene", "triumphant", "melancholic", "mysterious", "playful", "regal")


def theme_random(*, rng: random.Random | None = None) -> str:
    """A theme like "whimsical art nouveau clockwork automatons, gold and midnight blue palette"."""
    rng = rng or random.SystemRandom()
    style, subject, palette, mood = (
        rng.choice(ART_STYLES),
        rng.choice(SUBJECTS),
        rng.choice(PALETTES),
        rng.choice(MOODS),
    )
    return f"{mood} {style} {subject}, {palette} palette"
