"""What the pipeline's services share: their command line, and a node that
says where it listens once it runs.

Each service is a plain program: SERVICE.py --store DIR [--name NAME]
[--state DIR]. The mesh comes from the environment, as for any Chorus
program: $CHORUS_SEEDS (the hub to meet first) and $CHORUS_MESH.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

import chorus


def serve(service: str, setup: Callable[[chorus.Node, argparse.Namespace], None],
          doc: str) -> int:
    """Runs one instance of service: setup registers its handlers on the
    node; prints 'READY ENDPOINT' once it listens; returns when SIGTERM or
    Ctrl-C stops it."""
    parser = argparse.ArgumentParser(prog=f"{service}.py", description=doc)
    parser.add_argument("--store", required=True, help="the node's durable store (a directory)")
    parser.add_argument("--name", default=service,
                        help="this instance's name in logs and effect records")
    parser.add_argument("--state", default=".",
                        help="shared directory where the service records its effects")
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format=f"{args.name}: %(levelname)s %(message)s")
    with chorus.Node(service, store=args.store) as node:
        setup(node, args)
        print("READY", node.endpoint, flush=True)
        try:
            node.run()
        except KeyboardInterrupt:
            pass
    return 0
