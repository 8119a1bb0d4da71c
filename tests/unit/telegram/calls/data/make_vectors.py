#!/usr/bin/env python3
"""Builds a signaling test-vector file from one relay_demo.py call dumped with blobs.jsonl/key.json
(tgpeer --log-level info prints every signaling message it sends on stderr).
usage: make_vectors.py CALLDIR OUT.json "how the call was run" """
import json, re, sys
d, out, how = sys.argv[1], sys.argv[2], sys.argv[3]
key = json.load(open(d + "/key.json"))
blobs = []
dropped = set()
rows = [json.loads(l) for l in open(d + "/blobs.jsonl")]
for r in rows:
    if "dropped" in r:
        dropped.add((r["dropped"][0], r["index"]))
count = {"A": 0, "B": 0}
for r in rows:
    if "blob" not in r:
        continue
    side = r["from"][0]
    blobs.append({"from": side, "t_ms": round(r["t"] * 1000), "relayed": (side, count[side]) not in dropped,
                  "blob": r["blob"]})
    count[side] += 1
def logged(side, what):
    name = "A_outgoing" if side == "A" else "B_incoming"
    pat = re.compile(r"\): " + what + r": (\{.*\})$")
    return [m.group(1) for m in map(pat.search, open("%s/%s.stderr.log" % (d, name))) if m]
res = {"source": "tgpeer (tgcalls eb120ec) %s call: A --outgoing, B --incoming, relayed by relay_demo.py; %s"
       % (key["version"], how),
       "version": key["version"], "key_hex": key["key_hex"],
       "is_outgoing": {"A": True, "B": False},
       "blobs": blobs,
       "sent_messages": {s: logged(s, "sendSignalingMessage") for s in "AB"},
       "data_channel_messages": {s: logged(s, "sendDataChannelMessage") for s in "AB"}}
json.dump(res, open(out, "w"), indent=1)
