#!/usr/bin/python3
"""ocr: reads the text of a page image with tesseract; run as many
instances as the machine has cores for, and pages spread over them.

Command read_page {"page": PATH} -> {"page": PATH, "text": TEXT}.

Its effect is the page's text on the shared volume, one file per
idempotency key (STATE/ocr/SHA1.txt), put in place with link(2), which
fails when the file exists: applied once, whichever instance gets the page
and however often. A command sent again (its instance was killed, say)
finds the text there and returns it without applying anything. Each
instance logs what it does to STATE/ocr-NAME.log: 'start KEY PAGE', then
'took KEY WALL-MS CPU-MS' when it ran tesseract, then 'applied KEY PAGE' or
'repeat KEY PAGE'.
"""

import ctypes
import hashlib
import os
import resource
import signal
import subprocess
import sys
import time

import chorus
from service import serve

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    #   tesseract is killed with its instance, not left to finish for no one
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def tesseract(path: str) -> str:
    """The page's text, by tesseract."""
    #   One thread each: the machine's cores are shared by the instances
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    env.pop("LD_PRELOAD", None)     # a sanitizer's runtime, for the library only
    done = subprocess.run(["tesseract", path, "-"], capture_output=True, env=env,
                          preexec_fn=_die_with_parent, timeout=120)
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        raise chorus.Retryable("tesseract", f"{path}: exit {done.returncode}: "
                                            f"{reason[-1] if reason else 'no message'}")
    return done.stdout.decode(errors="replace")


def setup(node: chorus.Node, args) -> None:
    effects = os.path.join(args.state, "ocr")
    os.makedirs(effects, exist_ok=True)
    log = open(os.path.join(args.state, f"ocr-{args.name}.log"), "a", buffering=1)

    @node.command("read_page")
    def read_page(payload, ctx):
        page = payload.get("page") if isinstance(payload, dict) else None
        if not isinstance(page, str) or not os.path.isfile(page):
            raise chorus.Permanent("no-page", f"page {page!r} is not a file")
        key = ctx.idempotency
        effect = os.path.join(effects, hashlib.sha1(key.encode()).hexdigest() + ".txt")
        log.write(f"start {key} {page}\n")
        if not os.path.exists(effect):
            wall, cpu = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
            text = tesseract(page)
            used = resource.getrusage(resource.RUSAGE_CHILDREN)
            log.write(f"took {key} {1000 * (time.monotonic() - wall):.0f} "
                      f"{1000 * (used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime):.0f}\n")
            scratch = f"{effect}.{args.name}.{os.getpid()}"
            with open(scratch, "w") as f:
                f.write(text)
            try:
                os.link(scratch, effect)
                log.write(f"applied {key} {page}\n")
                return {"page": page, "text": text}
            except FileExistsError:
                pass            # another instance applied it first: its text stands
            finally:
                os.unlink(scratch)
        with open(effect) as f:
            text = f.read()
        log.write(f"repeat {key} {page}\n")
        return {"page": page, "text": text}


if __name__ == "__main__":
    sys.exit(serve("ocr", setup, __doc__))
