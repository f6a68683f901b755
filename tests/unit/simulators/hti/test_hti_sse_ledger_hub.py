import io
import json

from simulators.hti.hub import IdeaHub
from simulators.hti.ideas import IdeaGenerator
from simulators.hti.ledger import Ledger
from simulators.hti.profiles import Profile
from simulators.hti.sse import SseWriter, encode_event, json_data_lines


def test_event_encoding():
    assert encode_event("ping", ['{"ts": "x"}']) == b'event: ping\ndata: {"ts": "x"}\n\n'
    assert encode_event("idea", ["a", "b"], 7) == b"id: 7\nevent: idea\ndata: a\ndata: b\n\n"


def test_multiline_json_data_joins_back():
    value = {"DESCRIPTION": "line one\nline two", "PRICE": 1.5}
    lines = json_data_lines(value, multiline=True)
    assert len(lines) > 1 and all("\n" not in line for line in lines)
    assert json.loads("\n".join(lines)) == value
    assert json_data_lines(value) == [json.dumps(value)]


def test_chunked_writer():
    out = io.BytesIO()
    writer = SseWriter(out, chunked=True)
    writer.write(b"event: ping\n\n")
    writer.write(b"")  # must not end the body
    writer.end()
    assert out.getvalue() == b"D\r\nevent: ping\n\n\r\n0\r\n\r\n"
    plain = io.BytesIO()
    SseWriter(plain, chunked=False).write(b"x")
    assert plain.getvalue() == b"x"


def test_ledger_lines_are_flushed_at_once(tmp_path):
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path, keep_in_memory=False)
    version = IdeaGenerator(1, clock=lambda: 1_776_000_000).next()
    ledger.record_idea(version, 1.5)
    ledger.record_malformed(3, "{broken", 2.5)
    lines = [json.loads(line) for line in path.read_text().splitlines()]  # before close
    assert lines[0] == {"kind": "idea", "version": 1, "idea_id": version.idea_id,
                        "LAST_UPDATE": version.idea["LAST_UPDATE"], "update": False,
                        "emitted_at": 1.5, "json": version.text}
    assert lines[1] == {"kind": "malformed", "stream": 3, "emitted_at": 2.5, "data": "{broken"}
    assert ledger.entries() == lines
    ledger.close()


def test_hub_history_latest_versions_newest_first_and_bounded():
    clock = iter(range(1_776_000_000, 1_776_100_000, 3))
    gen = IdeaGenerator(11, clock=lambda: next(clock), update_probability=0.4)
    hub = IdeaHub(history_size=30)
    versions = [gen.next() for _ in range(200)]
    for v in versions:
        hub.publish(v)
    everyone = Profile(api_code="code-x", account_name="A")
    ideas = hub.history(everyone, 50)
    assert len(ideas) == 30  # only history_size ideas are kept
    latest = {}
    for v in versions:
        latest[v.idea_id] = v
    newest_first = sorted(latest.values(), key=lambda v: (v.last_update_epoch, v.version), reverse=True)
    assert ideas == [v.idea for v in newest_first[:30]]
    buys = hub.history(Profile(api_code="code-y", account_name="B", filters={"sides": ["Buy"]}), 50)
    assert buys and all(i["SIDE"] == "Buy" for i in buys)
    by_creation = hub.history(everyone, 50, order="creation_time")
    created = [i["CREATION_TIME"] for i in by_creation]
    assert created == sorted(created, reverse=True)


def test_hub_fans_out_matching_versions_only():
    hub = IdeaHub()
    sells = hub.subscribe(Profile(api_code="code-s", account_name="S", filters={"sides": ["Sell"]}))
    everyone = hub.subscribe(Profile(api_code="code-a", account_name="A"))
    gen = IdeaGenerator(2, clock=lambda: 1_776_000_000)
    versions = [gen.next() for _ in range(50)]
    for v in versions:
        hub.publish(v)
    hub.unsubscribe(everyone)
    late = gen.next()
    hub.publish(late)

    def drain(sub):
        items = []
        while not sub.queue.empty():
            items.append(sub.queue.get())
        return items

    assert drain(everyone) == versions  # nothing after unsubscribing
    assert drain(sells) == [v for v in versions + [late] if v.idea["SIDE"] == "Sell"]
