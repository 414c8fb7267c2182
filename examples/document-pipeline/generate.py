#!/usr/bin/python3
"""Renders bundles of scanned pages with known text, and the truth about them.

Each bundle is a directory of page images (page-01.png, page-02.png, ...)
holding a few documents: invoices, letters and identity forms. The first
page of every document carries the separator mark a scanning station prints
on a document's first sheet: a solid black bar across the top margin. The
truth (which pages form which document, its type and its fields) goes to
truth.json. The same seed gives the same bundles, byte for byte.

    generate.py --out DIR [--bundles N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from typing import Dict, List, Tuple

from PIL import Image, ImageDraw, ImageFont

FONT_DIR = "/usr/share/fonts/truetype/dejavu"
#   A page: 150 dpi A5-ish; big type and black on white, so that tesseract
#   reads it reliably and quickly
WIDTH, HEIGHT = 1100, 1400
MARGIN = 80
SIZE = 34                   # body text, in pixels
TITLE = 56                  # the title of a first page
LINE = 52                   # line pitch
MARK = (MARGIN, 24, WIDTH - MARGIN, 64)   # the separator bar of a first page

FIRST = ["Anna", "Peter", "Maria", "James", "Laura", "Thomas", "Helen", "Robert", "Sarah",
         "Daniel", "Emma", "Victor", "Grace", "Martin", "Julia", "Oscar"]
LAST = ["Walker", "Brown", "Fischer", "Morgan", "Turner", "Baker", "Harris", "Carter",
        "Nelson", "Porter", "Hughes", "Spencer", "Palmer", "Foster", "Marsh", "Holland"]
CITIES = ["Springfield", "Riverside", "Fairview", "Lakewood", "Greenville", "Madison"]
ITEMS = ["Paper supplies", "Printer toner", "Office chairs", "Desk lamps", "Network cables",
         "Storage boxes", "Consulting hours", "Software licence", "Delivery charge"]
FILLER = ("We thank you for your patience while we review the matter described above. "
          "Our team has checked the records and confirms the details given in this "
          "document. Please keep this page with your files and contact our office "
          "if anything needs to be corrected. The remaining pages follow in order.").split()


def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(os.path.join(FONT_DIR, name), size)


def name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def date(rng: random.Random, first: int = 2019, last: int = 2025) -> str:
    return f"{rng.randint(first, last)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def filler(rng: random.Random, lines: int) -> List[str]:
    """Lines of plain prose, about 40 characters each."""
    out, line = [], ""
    while len(out) < lines:
        word = rng.choice(FILLER)
        if len(line) + len(word) > 40:
            out.append(line)
            line = ""
        line = f"{line} {word}".strip()
    return out


def invoice(rng: random.Random) -> Tuple[Dict[str, str], List[List[str]], str]:
    fields = {"invoice_number": f"INV-{rng.randint(10000, 99999)}", "date": date(rng),
              "name": name(rng)}
    lines, total = [], 0
    for _ in range(rng.randint(2, 4)):
        cents = rng.randint(500, 90000)
        total += cents
        lines.append(f"{rng.choice(ITEMS)}: {cents // 100}.{cents % 100:02d}")
    fields["total"] = f"{total // 100}.{total % 100:02d}"
    first = [f"Invoice number: {fields['invoice_number']}", f"Invoice date: {fields['date']}",
             f"Bill to: {fields['name']}", f"{rng.randint(1, 99)} Market Street, "
             f"{rng.choice(CITIES)}", ""] + lines + ["", f"Total due: {fields['total']} EUR"]
    pages = [first] + [filler(rng, 8) for _ in range(rng.randint(0, 1))]
    return fields, pages, "INVOICE"


def letter(rng: random.Random) -> Tuple[Dict[str, str], List[List[str]], str]:
    fields = {"date": date(rng), "name": name(rng),
              "reference": f"REF-{rng.randint(1000, 9999)}"}
    first = [f"Date: {fields['date']}", f"Our reference: {fields['reference']}", "",
             f"Dear {fields['name']},", ""] + filler(rng, 5)
    pages = [first] + [filler(rng, 8) for _ in range(rng.randint(0, 2))]
    pages[-1] = pages[-1] + ["", "Yours sincerely,", name(rng)]
    return fields, pages, "LETTER"


def id_form(rng: random.Random) -> Tuple[Dict[str, str], List[List[str]], str]:
    fields = {"name": name(rng), "birth_date": date(rng, 1950, 2005),
              "id_number": f"ID-{rng.randint(100000, 999999)}"}
    first = ["Identity form", "", f"Full name: {fields['name']}",
             f"Date of birth: {fields['birth_date']}", f"ID number: {fields['id_number']}",
             f"City: {rng.choice(CITIES)}", "", "Signature: ______________"]
    return fields, [first], "IDENTITY FORM"


KINDS = {"invoice": invoice, "letter": letter, "id_form": id_form}


def render(path: str, title: str, lines: List[str], first: bool, number: int,
           count: int) -> None:
    image = Image.new("L", (WIDTH, HEIGHT), 255)
    draw = ImageDraw.Draw(image)
    y = MARGIN + 20
    if first:
        draw.rectangle(MARK, fill=0)
        draw.text((MARGIN, y), title, font=font(TITLE, bold=True), fill=0)
        y += TITLE + 40
    body = font(SIZE)
    for line in lines:
        draw.text((MARGIN, y), line, font=body, fill=0)
        y += LINE
    draw.text((MARGIN, HEIGHT - MARGIN - SIZE), f"Page {number} of {count}", font=body, fill=0)
    image.save(path, optimize=False)


def bundle(rng: random.Random, directory: str, bundle_id: str) -> Dict:
    os.makedirs(directory, exist_ok=True)
    documents, page = [], 0
    for _ in range(rng.randint(2, 4)):
        kind = rng.choice(sorted(KINDS))
        fields, pages, title = KINDS[kind](rng)
        first_page = page
        for number, lines in enumerate(pages, 1):
            page += 1
            render(os.path.join(directory, f"page-{page:02d}.png"), title, lines, number == 1,
                   number, len(pages))
        documents.append({"type": kind, "fields": fields,
                          "pages": [f"page-{p:02d}.png"
                                    for p in range(first_page + 1, page + 1)]})
    return {"bundle": bundle_id, "dir": directory, "pages": page, "documents": documents}


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory for the bundles and truth.json")
    parser.add_argument("--bundles", type=int, default=10, help="bundles to make (default 10)")
    parser.add_argument("--seed", type=int, default=13, help="random seed (default 13)")
    args = parser.parse_args(argv)
    if args.bundles < 1:
        parser.error(f"--bundles {args.bundles}: give at least 1")
    rng = random.Random(args.seed)
    out = os.path.abspath(args.out)
    bundles = [bundle(rng, os.path.join(out, f"b{n:03d}"), f"b{n:03d}")
               for n in range(1, args.bundles + 1)]
    with open(os.path.join(out, "truth.json"), "w") as f:
        json.dump({"seed": args.seed, "bundles": bundles}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
