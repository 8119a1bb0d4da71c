#include "media/dtmf.hpp"

#include <gtest/gtest.h>
#include <spandsp.h>

#include <cmath>
#include <string>
#include <vector>

#include "media/rtp.hpp"

namespace {

using esg::media::CodecId;
using esg::media::DtmfInjector;

// A 20 ms G.711 A-law packet of silence (0xD5), sequence `seq`, timestamp 160 per packet.
std::string audio_packet(uint16_t seq, uint8_t pt = 8) {
  std::string p(12, '\0');
  p[0] = char(0x80);
  p[1] = char(pt);
  p[2] = char(seq >> 8);
  p[3] = char(seq);
  const uint32_t ts = 1000u + 160u * seq;
  for (int i = 0; i < 4; ++i)
    p[size_t(4 + i)] = char(ts >> (24 - 8 * i));
  p[8] = 0x11, p[9] = 0x22, p[10] = 0x33, p[11] = 0x44;
  return p + std::string(160, char(0xD5));
}

TEST(DtmfDetector, FindsTheDigitsOfInBandTonesInAlaw) {
  dtmf_tx_state_t* tx = dtmf_tx_init(nullptr);
  dtmf_tx_put(tx, "7#", 2);
  esg::media::DtmfDetector detect(esg::media::CodecId::Pcma);
  std::string found;
  for (int f = 0; f < 40; ++f) {  // 800 ms: two digits of 50 ms with gaps, then silence
    int16_t pcm[160] = {};
    dtmf_tx(tx, pcm, 160);
    uint8_t alaw[160];
    for (int i = 0; i < 160; ++i)
      alaw[i] = linear_to_alaw(pcm[i]);
    found += detect.push(alaw, sizeof alaw);
  }
  dtmf_tx_free(tx);
  EXPECT_EQ(found, "7#");
  // Speech-like audio is no digit.
  esg::media::DtmfDetector quiet(esg::media::CodecId::Pcmu);
  for (int f = 0; f < 20; ++f) {
    uint8_t ulaw[160];
    for (int i = 0; i < 160; ++i)
      ulaw[i] = linear_to_ulaw(int(3000 * std::sin(2 * M_PI * 440 * (f * 160 + i) / 8000.0)));
    EXPECT_EQ(quiet.push(ulaw, sizeof ulaw), "");
  }
}

TEST(DtmfInjector, WritesAnRfc4733EventOverThePacketsFlowingToTheLeg) {
  DtmfInjector inject(DtmfInjector::Mode::Events, 101, CodecId::Pcma, 8000);
  EXPECT_FALSE(inject.add('x', 100));
  ASSERT_TRUE(inject.add('5', 100));
  std::vector<std::string> sent;
  for (uint16_t seq = 0; seq < 14; ++seq) {
    const std::string p = audio_packet(seq);
    std::string out;
    sent.push_back(inject.apply(p, out) ? out : p);
  }
  EXPECT_FALSE(inject.busy());
  // 100 ms: five packets of growing duration, the fifth with the end bit, sent three times.
  for (size_t i = 0; i < 7; ++i) {
    const auto h = esg::media::parse_rtp(sent[i]);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->payload_type, 101) << i;
    EXPECT_EQ(h->seq, i) << "the audio's own sequence numbers";
    EXPECT_EQ(h->timestamp, 1000u) << "every packet of an event has its start's timestamp";
    EXPECT_EQ(h->ssrc, 0x11223344u);
    ASSERT_EQ(sent[i].size(), 16u);
    EXPECT_EQ(uint8_t(sent[i][1]) >> 7, i == 0 ? 1 : 0) << "marker on the first";
    EXPECT_EQ(sent[i][12], 5);
    const bool end = uint8_t(sent[i][13]) & 0x80;
    EXPECT_EQ(end, i >= 4) << i;
    const int duration = uint8_t(sent[i][14]) << 8 | uint8_t(sent[i][15]);
    EXPECT_EQ(duration, i >= 4 ? 800 : 160 * int(i + 1)) << i;
  }
  for (size_t i = 7; i < sent.size(); ++i)
    EXPECT_EQ(sent[i], audio_packet(uint16_t(i))) << "audio again after the event";
}

TEST(DtmfInjector, QueuedKeysPlayOneAfterAnotherAsSeparateEvents) {
  DtmfInjector inject(DtmfInjector::Mode::Events, 101, CodecId::Pcma, 8000);
  inject.add('1', 40);
  inject.add('#', 40);
  std::string keys;
  std::vector<uint32_t> starts;
  for (uint16_t seq = 0; seq < 20; ++seq) {
    std::string out;
    if (!inject.apply(audio_packet(seq), out)) continue;
    if (uint8_t(out[1]) & 0x80) {
      keys += esg::media::kDtmfKeys[size_t(out[12])];
      starts.push_back(esg::media::parse_rtp(out)->timestamp);
    }
  }
  EXPECT_EQ(keys, "1#");
  ASSERT_EQ(starts.size(), 2u);
  EXPECT_NE(starts[0], starts[1]);
}

TEST(DtmfInjector, WritesTonesIntoG711PacketsThatTheDetectorFinds) {
  DtmfInjector inject(DtmfInjector::Mode::Tones, -1, CodecId::Pcmu, 8000);
  inject.add('9', 120);
  esg::media::DtmfDetector detect(CodecId::Pcmu);
  std::string found;
  int replaced = 0;
  for (uint16_t seq = 0; seq < 30; ++seq) {
    std::string p = audio_packet(seq, 0);
    std::string out;
    if (inject.apply(p, out)) {
      ++replaced;
      EXPECT_EQ(out.size(), p.size());
      EXPECT_EQ(out.substr(0, 12), p.substr(0, 12)) << "the packet's own header";
      p = out;
    }
    found += detect.push(reinterpret_cast<const uint8_t*>(p.data()) + 12, p.size() - 12);
  }
  EXPECT_EQ(found, "9");
  EXPECT_EQ(replaced, 6);  // 120 ms of 20 ms packets
  EXPECT_FALSE(inject.busy());
}

}  // namespace
