"""Parses a Perfetto trace with the perfetto package's own protobuf
descriptors and prints what the Rust test checks, as JSON: the packet
count, the clock snapshot, the tracks and every track event with its
interned names resolved and its debug annotations as typed values.

Run as: python3 perfetto_dump.py TRACE
"""

import json
import sys

from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

SEQ_INCREMENTAL_STATE_CLEARED = 1


def annotation_value(a):
    kind = a.WhichOneof("value")
    if kind is None:
        return None
    v = getattr(a, kind)
    if kind == "double_value":
        return {"double": v}
    return v


def main():
    trace = pb.Trace()
    with open(sys.argv[1], "rb") as f:
        trace.ParseFromString(f.read())
    out = {"packets": len(trace.packet), "clocks": [], "tracks": [], "events": []}
    # Interned names, per packet sequence, cleared as the flags say.
    interned = {}
    for p in trace.packet:
        seq = p.trusted_packet_sequence_id
        if p.sequence_flags & SEQ_INCREMENTAL_STATE_CLEARED or seq not in interned:
            if p.sequence_flags & SEQ_INCREMENTAL_STATE_CLEARED:
                interned[seq] = {"names": {}, "cats": {}, "fields": {}}
            interned.setdefault(seq, {"names": {}, "cats": {}, "fields": {}})
        state = interned[seq]
        if p.HasField("interned_data"):
            for n in p.interned_data.event_names:
                state["names"][n.iid] = n.name
            for n in p.interned_data.event_categories:
                state["cats"][n.iid] = n.name
            for n in p.interned_data.debug_annotation_names:
                state["fields"][n.iid] = n.name
        if p.HasField("clock_snapshot"):
            out["clocks"].append(
                {
                    "primary": p.clock_snapshot.primary_trace_clock,
                    "clocks": [[c.clock_id, c.timestamp] for c in p.clock_snapshot.clocks],
                    "default_clock": p.trace_packet_defaults.timestamp_clock_id,
                }
            )
        if p.HasField("track_descriptor"):
            d = p.track_descriptor
            t = {"uuid": d.uuid, "parent": d.parent_uuid, "name": d.name}
            if d.HasField("process"):
                t["pid"] = d.process.pid
                t["process_name"] = d.process.process_name
            if d.HasField("thread"):
                t["pid"] = d.thread.pid
                t["tid"] = d.thread.tid
            out["tracks"].append(t)
        if p.HasField("track_event"):
            e = p.track_event
            name = e.name if e.HasField("name") else state["names"].get(e.name_iid)
            annotations = {}
            for a in e.debug_annotations:
                key = a.name if a.HasField("name") else state["fields"].get(a.name_iid)
                annotations[key] = annotation_value(a)
            out["events"].append(
                {
                    "ts": p.timestamp,
                    "type": pb.TrackEvent.Type.Name(e.type),
                    "track": e.track_uuid,
                    "name": name,
                    "categories": [state["cats"].get(i) for i in e.category_iids],
                    "annotations": annotations,
                    "needs_state": bool(p.sequence_flags & 2),
                }
            )
    json.dump(out, sys.stdout)


main()
