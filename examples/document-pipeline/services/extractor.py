#!/usr/bin/python3
"""extractor: pulls a document's fields out of its text by pattern.

Command extract {"type": TYPE, "pages": [{"text": TEXT}, ...]} ->
{"fields": {NAME: VALUE, ...}}: the fields of that type of document (an
invoice's number, date, name and total; a letter's date, name and
reference; an identity form's name, birth date and id number). A field
whose pattern matches nothing is left out.
"""

import re
import sys

import chorus
from classifier import text_of
from service import serve

DATE = r"(\d{4}-\d{2}-\d{2})"
NAME = r"([A-Z][a-z]+ [A-Z][a-z]+)"
PATTERNS = {
    "invoice": {"invoice_number": r"\b(INV-\d{5})\b", "date": r"Invoice date:\s*" + DATE,
                "name": r"Bill to:\s*" + NAME, "total": r"Total due:\s*(\d+\.\d{2})"},
    "letter": {"date": r"Date:\s*" + DATE, "name": r"Dear\s+" + NAME,
               "reference": r"\b(REF-\d{4})\b"},
    "id_form": {"name": r"Full name:\s*" + NAME, "birth_date": r"Date of birth:\s*" + DATE,
                "id_number": r"\b(ID-\d{6})\b"},
}


def setup(node: chorus.Node, args) -> None:
    @node.command("extract")
    def extract(payload, ctx):
        text = text_of(payload)
        kind = payload.get("type")
        fields = {}
        for field, pattern in PATTERNS.get(kind, {}).items():
            found = re.search(pattern, text)
            if found:
                fields[field] = found.group(1)
        return {"fields": fields}


if __name__ == "__main__":
    sys.exit(serve("extractor", setup, __doc__))
