#!/usr/bin/python3
"""splitter: splits a scanned bundle into documents by their separator marks.

Command split {"bundle": DIR} -> {"documents": [{"id": "1", "pages":
[PATH, ...]}, ...]}: the bundle is a directory of page images (page-01.png,
...), taken in name order; every page whose top margin carries the
separator bar (a solid black band, as a scanning station prints on each
document's first sheet) starts a document. It reads pixels, not text:
splitting needs no OCR. Pages travel as paths on the shared volume.
"""

import os
import sys

from PIL import Image

import chorus
from service import serve

#   Where the separator bar sits on a page, and how dark it must be
BAR = (80, 24, 1020, 64)
DARK = 0.9


def is_first_page(path: str) -> bool:
    with Image.open(path) as image:
        band = image.convert("L").crop(BAR)
        histogram = band.histogram()
        return sum(histogram[:128]) >= DARK * band.width * band.height


def setup(node: chorus.Node, args) -> None:
    @node.command("split")
    def split(payload, ctx):
        bundle = payload.get("bundle") if isinstance(payload, dict) else None
        if not isinstance(bundle, str) or not os.path.isdir(bundle):
            raise chorus.Permanent("no-bundle", f"bundle {bundle!r} is not a directory")
        pages = sorted(name for name in os.listdir(bundle) if name.endswith(".png"))
        if not pages:
            raise chorus.Permanent("no-pages", f"bundle {bundle}: no page images (*.png)")
        documents = []
        for name in pages:
            path = os.path.join(bundle, name)
            try:
                first = is_first_page(path)
            except OSError as exc:
                raise chorus.Permanent("bad-page", f"{path}: {exc}")
            if first:
                documents.append({"id": str(len(documents) + 1), "pages": []})
            elif not documents:
                raise chorus.Permanent("no-marker", f"{path}: the bundle's first page has "
                                                    f"no separator mark")
            documents[-1]["pages"].append(path)
        return {"documents": documents}


if __name__ == "__main__":
    sys.exit(serve("splitter", setup, __doc__))
