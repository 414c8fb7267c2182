#!/usr/bin/python3
"""classifier: tells a document's type from the keywords of its text.

Command classify {"pages": [{"text": TEXT}, ...]} -> {"type": TYPE,
"scores": {TYPE: N, ...}}: TYPE is invoice, letter or id_form, whichever
has most keyword hits, or unknown when none has any.
"""

import sys

import chorus
from service import serve

KEYWORDS = {
    "invoice": ["invoice", "bill to", "total due"],
    "letter": ["dear", "yours sincerely", "our reference"],
    "id_form": ["identity form", "date of birth", "id number"],
}


def text_of(payload) -> str:
    pages = payload.get("pages") if isinstance(payload, dict) else None
    if not isinstance(pages, list):
        raise chorus.Permanent("bad-input", "give {\"pages\": [{\"text\": ...}, ...]}")
    return "\n".join(str(page.get("text", "")) for page in pages if isinstance(page, dict))


def setup(node: chorus.Node, args) -> None:
    @node.command("classify")
    def classify(payload, ctx):
        text = text_of(payload).lower()
        scores = {kind: sum(text.count(word) for word in words)
                  for kind, words in KEYWORDS.items()}
        best = max(scores, key=lambda kind: scores[kind])
        return {"type": best if scores[best] else "unknown", "scores": scores}


if __name__ == "__main__":
    sys.exit(serve("classifier", setup, __doc__))
