#!/usr/bin/env python3
"""Generates src/threepid/casefold-table.ts: the full case folding Python's str.casefold() applies.

sydent folds email addresses with Python's str.casefold(); Seraph reproduces it from this table so that
both compute the same lookup hashes. str.casefold() is Unicode full case folding (CaseFolding.txt
statuses C and F) of the Unicode version the interpreter was built with, so the table depends on the
Python version: regenerate it with the Python the header names (3.11 for the committed file).

Usage: python3 scripts/casefold-table.py > src/threepid/casefold-table.ts

Format: every code point whose casefold() differs from itself, in code point order, as
"<code point hex>:<folded code points hex, space separated>" (lower-case hex, no padding), joined by ";",
cut into string literals of CHUNK characters concatenated with "+".
"""

import platform
import sys
import unicodedata

CHUNK = 100


def entries():
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        folded = ch.casefold()
        if folded != ch:
            yield "%x:%s" % (cp, " ".join("%x" % ord(c) for c in folded))


def render():
    data = ";".join(entries())
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    lines = [
        "// Generated from Python %s str.casefold() (Unicode %s, CaseFolding.txt status C+F)."
        % (platform.python_version(), unicodedata.unidata_version),
        '// Format: "<code point hex>:<folded code points hex, space separated>" joined by ";".',
        "// biome-ignore format: generated data",
        "export const CASEFOLD_DATA =",
    ]
    for i, chunk in enumerate(chunks):
        lines.append('  "%s"%s' % (chunk, " +" if i < len(chunks) - 1 else ";"))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
