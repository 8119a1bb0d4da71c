"""A phone for the NAT test, run inside the phone's network namespace: it calls esg, sends
`count` G.711 packets, and prints one JSON line (status, Call-ID, packets sent and received
back); then it waits for a line on stdin, sends BYE, and prints the BYE's status."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from sip_call import RtpPort, UdpCall  # noqa: E402


def main():
    esg_host, esg_port, ip, ruri, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], \
        sys.argv[4], int(sys.argv[5])
    rtp = RtpPort(ip)
    call = UdpCall(esg_port, ip, ruri, rtp.port, to_host=esg_host, esg_host=esg_host)
    result = {"status": call.status, "call_id": call.call_id, "rtp_port": rtp.port,
              "sip_port": call.port}
    if call.status == 200:
        dest = call.media_dest()
        result["media_dest"] = list(dest)
        rtp.send(dest, count=count)
        time.sleep(0.5)
        result["sent"] = count
        result["received"] = len([p for p in rtp.packets if p[0] == dest])
    print(json.dumps(result), flush=True)
    sys.stdin.readline()
    print(json.dumps({"bye": call.bye() if call.status == 200 else None}), flush=True)
    rtp.close()
    call.close()


if __name__ == "__main__":
    main()
