"""baresip (Debian's baresip-core) as a phone: it dials one number, sends a sine tone
(module ausine) in the codecs it is given, and records what it hears (module sndfile, the
decoded audio as a WAV file) until it quits after `seconds`. No sound card: the player is
aubridge's, which plays into nothing."""

import glob
import os
import shutil
import struct
import subprocess
import tempfile
import wave

from sipp_fixture import free_port

CONFIG = """poll_method		epoll
sip_listen		{ip}:{port}
audio_player		aubridge,nil
audio_source		ausine,{freq}
audio_alert		aubridge,nil
ausrc_srate		48000
ausrc_channels		2
rtp_ports		{rtp_low}-{rtp_high}
module_path		/usr/lib/baresip/modules
module			g711.so
module			g722.so
module			opus.so
module			ausine.so
module			aubridge.so
module			sndfile.so
module_app		account.so
module_app		menu.so
snd_path		{dir}
"""


class BaresipPhone:
    def __init__(self, ip, dial, freq=1000, codecs="PCMA", seconds=5, rtp_ports=(24000, 24099)):
        self.dir = tempfile.mkdtemp(prefix="esg-baresip-")
        with open(os.path.join(self.dir, "config"), "w") as f:
            f.write(CONFIG.format(ip=ip, port=free_port(ip), freq=freq, rtp_low=rtp_ports[0],
                                  rtp_high=rtp_ports[1], dir=self.dir))
        with open(os.path.join(self.dir, "accounts"), "w") as f:
            f.write("<sip:phone@%s>;regint=0;audio_codecs=%s\n" % (ip, codecs))
        self.log = open(os.path.join(self.dir, "baresip.log"), "w")
        self.proc = subprocess.Popen(
            ["baresip", "-f", self.dir, "-t", str(seconds), "-e", "/dial " + dial],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)

    def wait(self, timeout=30):
        rc = self.proc.wait(timeout=timeout)
        self.log.close()
        return rc

    def output(self):
        with open(os.path.join(self.dir, "baresip.log"), errors="replace") as f:
            return f.read()

    def heard(self):
        """The 16-bit samples (8 kHz mono for G.711) of what the phone received and decoded."""
        files = glob.glob(os.path.join(self.dir, "dump-*-dec.wav"))
        if not files:
            return [], 0
        with wave.open(files[0]) as w:
            raw = w.readframes(w.getnframes())
            rate = w.getframerate()
        return list(struct.unpack("<%dh" % (len(raw) // 2), raw)), rate

    def stop(self, keep=False):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.log.closed:
            self.log.close()
        if keep:
            print("baresip kept in", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
