"""Rebuild the fonts bundled in cards/fonts/ from Debian's Noto packages.

    mkdir -p /tmp/noto && cd /tmp/noto && apt-get download fonts-noto-core fonts-noto-cjk
    for deb in *.deb; do dpkg-deb -x "$deb" root; done
    .venv/bin/python scripts/cards_fonts_build.py /tmp/noto/root

Cards are rendered only with these files, never with the host's fonts, so a finished card
looks the same on every machine. Noto Sans CJK is 19 MB per weight: it is subset (fontTools)
to the characters of JIS X 0208, GB 2312, Big5 level 1 and KS X 1001 Hangul plus the kana,
CJK punctuation and full-width blocks, without hinting and without the locale and vertical
layout features, which makes one 2.7 MB file. Each font's SIL Open Font License text, with
the font's own copyright line, is written beside it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection, TTFont

DEST = Path(__file__).resolve().parent.parent / "cards" / "fonts"
CORE = "usr/share/fonts/truetype/noto"
CJK = "usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
CJK_FACE = 0  # "Noto Sans CJK JP": ideographs take their Japanese forms
CJK_OUT = "NotoSansCJK-Regular-Subset.otf"
COPIED = [
    "NotoSans-Regular.ttf",
    "NotoSans-Bold.ttf",
    "NotoSerif-Regular.ttf",
    "NotoSerif-Bold.ttf",
    "NotoSansArabic-Regular.ttf",
    "NotoSansArabic-Bold.ttf",
    "NotoSansSymbols-Regular.ttf",
    "NotoSansSymbols2-Regular.ttf",
]
WHOLE_BLOCKS = [
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0x3040, 0x309F),  # hiragana
    (0x30A0, 0x30FF),  # katakana
    (0x3130, 0x318F),  # Hangul compatibility jamo
    (0x31F0, 0x31FF),  # katakana phonetic extensions
    (0xFF00, 0xFFEF),  # half-width and full-width forms
]


def _double_byte(codepoint: int, codec: str) -> bool:
    try:
        return len(chr(codepoint).encode(codec)) == 2
    except UnicodeEncodeError:
        return False


def cjk_charset() -> set[int]:
    chars: set[int] = set()
    for codepoint in range(0x2E80, 0xFFF0):
        if 0xD800 <= codepoint <= 0xF8FF:
            continue
        if any(_double_byte(codepoint, codec) for codec in ("shift_jis", "gb2312", "euc_kr")):
            chars.add(codepoint)
            continue
        try:
            big5 = chr(codepoint).encode("big5")
        except UnicodeEncodeError:
            continue
        if len(big5) == 2 and 0xA440 <= int.from_bytes(big5, "big") <= 0xC67E:  # Big5 level 1
            chars.add(codepoint)
    for first, last in WHOLE_BLOCKS:
        chars.update(range(first, last + 1))
    return chars


OFL = """\
{copyright}

This Font Software is licensed under the SIL Open Font License, Version 1.1.
This license is copied below, and is also available with a FAQ at:
https://openfontlicense.org

-----------------------------------------------------------
SIL OPEN FONT LICENSE Version 1.1 - 26 February 2007
-----------------------------------------------------------

PREAMBLE
The goals of the Open Font License (OFL) are to stimulate worldwide
development of collaborative font projects, to support the font creation
efforts of academic and linguistic communities, and to provide a free and
open framework in which fonts may be shared and improved in partnership
with others.

The OFL allows the licensed fonts to be used, studied, modified and
redistributed freely as long as they are not sold by themselves. The
fonts, including any derivative works, can be bundled, embedded,
redistributed and/or sold with any software provided that any reserved
names are not used by derivative works. The fonts and derivatives,
however, cannot be released under any other type of license. The
requirement for fonts to remain under this license does not apply
to any document created using the fonts or their derivatives.

DEFINITIONS
"Font Software" refers to the set of files released by the Copyright
Holder(s) under this license and clearly marked as such. This may
include source files, build scripts and documentation.

"Reserved Font Name" refers to any names specified as such after the
copyright statement(s).

"Original Version" refers to the collection of Font Software components as
distributed by the Copyright Holder(s).

"Modified Version" refers to any derivative made by adding to, deleting,
or substituting -- in part or in whole -- any of the components of the
Original Version, by changing formats or by porting the Font Software to a
new environment.

"Author" refers to any designer, engineer, programmer, technical
writer or other person who contributed to the Font Software.

PERMISSION & CONDITIONS
Permission is hereby granted, free of charge, to any person obtaining
a copy of the Font Software, to use, study, copy, merge, embed, modify,
redistribute, and sell modified and unmodified copies of the Font
Software, subject to the following conditions:

1) Neither the Font Software nor any of its individual components,
in Original or Modified Versions, may be sold by itself.

2) Original or Modified Versions of the Font Software may be bundled,
redistributed and/or sold with any software, provided that each copy
contains the above copyright notice and this license. These can be
included either as stand-alone text files, human-readable headers or
in the appropriate machine-readable metadata fields within text or
binary files as long as those fields can be easily viewed by the user.

3) No Modified Version of the Font Software may use the Reserved Font
Name(s) unless explicit written permission is granted by the corresponding
Copyright Holder. This restriction only applies to the primary font name as
presented to the users.

4) The name(s) of the Copyright Holder(s) and the Author(s) of the Font
Software shall not be used to promote, endorse or advertise any
Modified Version, except to acknowledge the contribution(s) of the
Copyright Holder(s) and the Author(s) or with their explicit written
permission.

5) The Font Software, modified or unmodified, in part or in whole,
must be distributed entirely under this license, and must not be
distributed under any other license. The requirement for fonts to
remain under this license does not apply to any document created
using the Font Software.

TERMINATION
This license becomes null and void if any of the above conditions are
not met.

DISCLAIMER
THE FONT SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND,
EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO ANY WARRANTIES OF
MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT
OF COPYRIGHT, PATENT, TRADEMARK, OR OTHER RIGHT. IN NO EVENT SHALL THE
COPYRIGHT HOLDER BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY,
INCLUDING ANY GENERAL, SPECIAL, INDIRECT, INCIDENTAL, OR CONSEQUENTIAL
DAMAGES, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING
FROM, OUT OF THE USE OR INABILITY TO USE THE FONT SOFTWARE OR FROM
OTHER DEALINGS IN THE FONT SOFTWARE.
"""


def licence_write(font: TTFont, name: str) -> None:
    copyright_line = font["name"].getDebugName(0) or ""
    (DEST / f"{Path(name).stem}.OFL.txt").write_text(OFL.format(copyright=copyright_line), encoding="utf-8")


def main(root: Path) -> None:
    DEST.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        shutil.copyfile(root / CORE / name, DEST / name)
        licence_write(TTFont(DEST / name, lazy=True), name)
    font = TTCollection(root / CJK).fonts[CJK_FACE]
    options = subset.Options()
    options.layout_features = ["kern", "palt", "halt", "liga", "ccmp"]
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.hinting = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=cjk_charset())
    subsetter.subset(font)
    font.save(DEST / CJK_OUT)
    licence_write(font, CJK_OUT)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
