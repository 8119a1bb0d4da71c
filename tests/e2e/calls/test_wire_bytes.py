"""Bytes that are not UTF-8 in what a caller sends never end esg. A From with a Latin-1 name
and user part (0xF6, 0xFF: what an old PBX or a scanner sends) once ended the process: the
call's record is JSON, and the JSON library throws on such bytes. The call goes through, and
the calls API and the CDR show U+FFFD where the bytes were."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from media_case import MediaCase  # noqa: E402

# '"Jörg" <sip:\xff\xfe42@127.0.0.2>' in Latin-1 bytes, carried by lone surrogates.
FROM = b'"J\xf6rg" <sip:\xff\xfe42@127.0.0.2>'.decode(errors="surrogateescape")


class WireBytes(MediaCase):
    media = {"ports": [24500, 24599]}

    def test_a_caller_whose_from_is_not_utf8_is_put_through_and_recorded(self):
        pbx, _ = self.echoing_pbx()
        call = self.call(self.port(), from_uri=FROM)
        calls = self.api.ok("GET", "/api/monitor/v1/calls")["data"]["calls"]
        self.assertEqual(len(calls), 1, calls)
        self.assertEqual(calls[0]["caller"]["received"], "\ufffd\ufffd42")
        self.assertEqual(call.bye(), 200)
        self.assertEqual(pbx.wait(), 0, pbx.output())

        cdr = self.api.ok("GET", "/rest/v1/cdrs?limit=1")["items"][0]
        self.assertEqual(cdr["caller"]["received"], "\ufffd\ufffd42")
        self.assertEqual(cdr["status"], 200)
        self.assertEqual(cdr["hangup_by"], "caller")
        self.assertTrue(self.esg.alive())  # and it exits 0 after the class (MediaCase)


if __name__ == "__main__":
    unittest.main()
