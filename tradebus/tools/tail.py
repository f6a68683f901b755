"""`tradebus tail TOPIC`: decoded records (through the registry), following."""

from __future__ import annotations

import json
import sys

from tradebus.config import CommonSettings
from tradebus.tools.records import jsonable, read_records
from tradebus.topics import ALL_TOPICS, TopicNames


def register(parser) -> None:
    parser.add_argument("topic", help=f"a registry topic ({', '.join(t.name for t in ALL_TOPICS[:3])}, ...) or a full name")
    parser.add_argument("--from-beginning", action="store_true", help="start at the oldest retained record")
    parser.add_argument("--last", type=int, default=10, help="without --from-beginning: start this many records before the end of each partition")
    parser.add_argument("--json", action="store_true", help="one compact JSON object per line, for piping")
    parser.add_argument("--no-follow", action="store_true", help="stop at the current end instead of following")
    parser.add_argument("--max", type=int, default=0, help="stop after this many records")
    parser.set_defaults(func=run)


def resolve(name: str, prefix: str) -> str:
    known = {t.name for t in ALL_TOPICS}
    return TopicNames(prefix)(next(t for t in ALL_TOPICS if t.name == name)) if name in known else name


def run(args) -> int:
    common = CommonSettings.from_env()
    topic = resolve(args.topic, common.topic_prefix)
    count = 0
    try:
        for record in read_records(common, topic, from_beginning=args.from_beginning, last=args.last,
                                   follow=not args.no_follow):
            out = jsonable(record)
            if args.json:
                print(json.dumps(out, separators=(",", ":"), ensure_ascii=False), flush=True)
            else:
                print(f"--- {out['topic']}[{out['partition']}]@{out['offset']} key={out['key']}")
                print(json.dumps(out["value"], indent=2, ensure_ascii=False), flush=True)
            count += 1
            if args.max and count >= args.max:
                break
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        sys.stderr.close()
    return 0
