#include "media/codec.hpp"

#include <gtest/gtest.h>

#include <opus/opus.h>

#include <cmath>
#include <string>
#include <vector>

#include "media/rtp.hpp"

namespace {

using esg::media::CodecId;
using esg::media::Transcoder;

// Relative power of `freq` in `pcm` (Goertzel), against the total power.
double tone_share(const std::vector<int16_t>& pcm, double freq, double rate) {
  const double k = 2.0 * std::cos(2.0 * M_PI * freq / rate);
  double s1 = 0, s2 = 0, total = 0;
  for (int16_t x : pcm) {
    const double s = x + k * s1 - s2;
    s2 = s1;
    s1 = s;
    total += double(x) * x;
  }
  const double power = s1 * s1 + s2 * s2 - k * s1 * s2;
  return total > 0 ? power / (total * pcm.size() / 2.0) : 0;
}

// One second of a `freq` tone as 20 ms RTP packets of `codec`.
std::vector<std::string> tone_packets(CodecId codec, uint8_t pt, double freq) {
  const auto& info = esg::media::codec_info(codec);
  auto enc = esg::media::make_encoder(codec);
  const size_t frame = info.sample_rate / 50;
  std::vector<std::string> out;
  for (int f = 0; f < 50; ++f) {
    std::vector<int16_t> pcm(frame);
    for (size_t i = 0; i < frame; ++i) {
      const double t = double(f * frame + i) / info.sample_rate;
      pcm[i] = int16_t(8000 * std::sin(2 * M_PI * freq * t));
    }
    std::string p(12 + 1500, '\0');
    auto* b = reinterpret_cast<uint8_t*>(p.data());
    b[0] = 0x80;
    b[1] = pt;
    b[3] = uint8_t(f);
    const int n = enc->encode(pcm.data(), frame, b + 12, 1500);
    p.resize(12 + size_t(n));
    out.push_back(p);
  }
  return out;
}

std::vector<int16_t> decoded(CodecId codec, const std::vector<std::string>& packets) {
  auto dec = esg::media::make_decoder(codec);
  std::vector<int16_t> pcm;
  for (const auto& p : packets) {
    std::vector<int16_t> buf(5760);
    const int n = dec->decode(reinterpret_cast<const uint8_t*>(p.data()) + 12, p.size() - 12,
                              buf.data(), buf.size());
    if (n > 0) pcm.insert(pcm.end(), buf.begin(), buf.begin() + n);
  }
  return pcm;
}

std::vector<std::string> through(Transcoder& t, const std::vector<std::string>& in) {
  std::vector<std::string> out;
  for (const auto& p : in)
    t.push(p, out);
  return out;
}

TEST(Transcoder, AToneSurvivesG711ToOpusAndBack) {
  const auto pcma = tone_packets(CodecId::Pcma, 8, 1000);
  Transcoder to_opus(CodecId::Pcma, CodecId::Opus, 111);
  const auto opus = through(to_opus, pcma);
  ASSERT_GE(opus.size(), 48u);
  auto h = esg::media::parse_rtp(opus[1]);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->payload_type, 111);
  EXPECT_EQ(uint32_t(esg::media::parse_rtp(opus[2])->timestamp - h->timestamp), 960u);  // 48 kHz
  // On the Opus side: still a 1 kHz tone (the codec's warm-up left out).
  auto pcm48 = decoded(CodecId::Opus, opus);
  pcm48.erase(pcm48.begin(), pcm48.begin() + 4800);
  EXPECT_GT(tone_share(pcm48, 1000, 48000), 0.8);
  EXPECT_LT(tone_share(pcm48, 1500, 48000), 0.05);
  // And back to G.711 μ-law.
  Transcoder back(CodecId::Opus, CodecId::Pcmu, 0);
  const auto pcmu = through(back, opus);
  ASSERT_GE(pcmu.size(), 45u);
  EXPECT_EQ(pcmu[0].size(), 12u + 160u);
  auto pcm8 = decoded(CodecId::Pcmu, pcmu);
  pcm8.erase(pcm8.begin(), pcm8.begin() + 1600);
  EXPECT_GT(tone_share(pcm8, 1000, 8000), 0.8);
  EXPECT_LT(tone_share(pcm8, 600, 8000), 0.05);
}

TEST(Transcoder, G722AndPtimeRepacketization) {
  const auto g722 = tone_packets(CodecId::G722, 9, 700);
  Transcoder to_pcma(CodecId::G722, CodecId::Pcma, 8, 30);  // 20 ms in, 30 ms out
  const auto pcma = through(to_pcma, g722);
  ASSERT_GE(pcma.size(), 32u);
  EXPECT_EQ(pcma[0].size(), 12u + 240u);
  auto pcm = decoded(CodecId::Pcma, pcma);
  pcm.erase(pcm.begin(), pcm.begin() + 800);
  EXPECT_GT(tone_share(pcm, 700, 8000), 0.8);
  const auto h0 = esg::media::parse_rtp(pcma[0]), h1 = esg::media::parse_rtp(pcma[1]);
  EXPECT_EQ(uint16_t(h1->seq - h0->seq), 1);
  EXPECT_EQ(h1->timestamp - h0->timestamp, 240u);
  EXPECT_EQ(to_pcma.frames_in(), 50u);
}

TEST(Codecs, NamesAndStaticPayloadTypes) {
  EXPECT_EQ(esg::media::codec_named("pcma")->id, CodecId::Pcma);
  EXPECT_EQ(esg::media::codec_named("OPUS")->clock_rate, 48000u);
  EXPECT_FALSE(esg::media::codec_named("G729"));
  EXPECT_EQ(esg::media::codec_of_static(9)->sample_rate, 16000u);
  EXPECT_EQ(esg::media::codec_of_static(9)->clock_rate, 8000u);
  EXPECT_FALSE(esg::media::codec_of_static(18));
}

// Opus coded from G.711 (8 kHz at its source) or G.722 (16 kHz) spends nothing on the band the
// source never had: the packets say narrowband and wideband; from 48 kHz, more than that.
TEST(Codec, OpusFromATelephonySourceCodesOnlyItsBand) {
  std::vector<int16_t> pcm(960);
  for (size_t i = 0; i < pcm.size(); ++i)
    pcm[i] = int16_t(8000 * std::sin(2 * M_PI * 1000 * double(i) / 48000));
  auto bandwidth = [&](uint32_t source_rate) {
    auto enc = esg::media::make_encoder(CodecId::Opus, source_rate);
    uint8_t out[1500];
    int n = 0;
    for (int f = 0; f < 10; ++f)  // past the encoder's first frames
      n = enc->encode(pcm.data(), pcm.size(), out, sizeof out);
    EXPECT_GT(n, 0);
    return opus_packet_get_bandwidth(out);
  };
  EXPECT_EQ(bandwidth(8000), OPUS_BANDWIDTH_NARROWBAND);
  EXPECT_EQ(bandwidth(16000), OPUS_BANDWIDTH_WIDEBAND);
  EXPECT_GT(bandwidth(48000), OPUS_BANDWIDTH_WIDEBAND);
}

// Concealment (issue 22): an Opus source with frames missing still makes an output whose time
// advances by the input's real duration, the gaps filled.

struct OpusStream {
  std::vector<std::string> packets;  // RTP, 48 kHz timestamps from 0
  uint32_t frame = 0;                // samples a packet
};

// `seconds` of a `freq` tone as Opus packets of `frame_ms`, coded by `enc` (or esg's encoder).
OpusStream opus_tone(double freq, int frame_ms, double seconds, OpusEncoder* enc = nullptr) {
  OpusStream s;
  s.frame = uint32_t(48 * frame_ms);
  auto own = esg::media::make_encoder(CodecId::Opus);
  const int frames = int(seconds * 1000 / frame_ms);
  for (int f = 0; f < frames; ++f) {
    std::vector<int16_t> pcm(s.frame);
    for (size_t i = 0; i < s.frame; ++i)
      pcm[i] = int16_t(8000 * std::sin(2 * M_PI * freq * double(f * s.frame + i) / 48000));
    std::string p(12 + 1500, '\0');
    auto* b = reinterpret_cast<uint8_t*>(p.data());
    b[0] = 0x80;
    b[1] = 111;
    b[2] = uint8_t(f >> 8);
    b[3] = uint8_t(f);
    const uint32_t ts = uint32_t(f) * s.frame;
    for (int i = 0; i < 4; ++i)
      b[4 + i] = uint8_t(ts >> (24 - 8 * i));
    b[11] = 1;  // SSRC
    const int n = enc ? opus_encode(enc, pcm.data(), int(s.frame), b + 12, 1500)
                      : own->encode(pcm.data(), s.frame, b + 12, 1500);
    p.resize(12 + size_t(n));
    s.packets.push_back(p);
  }
  return s;
}

uint32_t ts_of(const std::string& p) {
  return esg::media::parse_rtp(p)->timestamp;
}

// The longest run (in ms) of 5 ms windows whose level is under a tenth of the tone's.
int longest_drop_ms(const std::vector<int16_t>& pcm, int rate) {
  const size_t w = size_t(rate / 200);
  int run = 0, longest = 0;
  for (size_t at = size_t(rate / 5); at + w <= pcm.size(); at += w) {  // past the warm-up
    double e = 0;
    for (size_t i = at; i < at + w; ++i)
      e += double(pcm[i]) * pcm[i];
    const double rms = std::sqrt(e / double(w));
    run = rms < 8000 / std::sqrt(2.0) / 10 ? run + 5 : 0;
    longest = std::max(longest, run);
  }
  return longest;
}

TEST(Transcoder, OpusWithATenthOfItsFramesLostKeepsItsTimeAndTone) {
  const auto in = opus_tone(1000, 60, 6);
  std::vector<std::string> sent;
  for (size_t i = 0; i < in.packets.size(); ++i)
    if (i % 10 != 5) sent.push_back(in.packets[i]);  // 10 % lost, one at a time
  Transcoder t(CodecId::Opus, CodecId::Pcmu, 0);
  const auto out = through(t, sent);
  EXPECT_EQ(t.concealed(), 10u);
  EXPECT_EQ(t.fec(), 0u);  // esg's own encoder codes no FEC
  // The output's timestamps span the input's real duration (6 s at 8 kHz), within the frame
  // the resampler and the packetizer hold back; and consecutively, 160 a packet.
  ASSERT_FALSE(out.empty());
  const uint32_t span = ts_of(out.back()) + 160 - ts_of(out.front());
  EXPECT_NEAR(double(span), 6 * 8000.0, 160.0);
  EXPECT_NEAR(double(out.size()), 300.0, 1.0);
  for (size_t i = 1; i < out.size(); ++i)
    ASSERT_EQ(ts_of(out[i]) - ts_of(out[i - 1]), 160u) << i;
  // The audio has no hole longer than one lost frame (concealment extrapolates the tone).
  const auto pcm = decoded(CodecId::Pcmu, out);
  EXPECT_LE(longest_drop_ms(pcm, 8000), 60);
  EXPECT_GT(tone_share(pcm, 1000, 8000), 0.5);
}

TEST(Transcoder, AGapLongerThan120msIsNotConcealedButTheTimeJumps) {
  const auto in = opus_tone(1000, 60, 2);
  std::vector<std::string> sent;
  for (size_t i = 0; i < in.packets.size(); ++i)
    if (i < 10 || i > 12) sent.push_back(in.packets[i]);  // 180 ms lost
  Transcoder t(CodecId::Opus, CodecId::Pcma, 8);
  const auto out = through(t, sent);
  EXPECT_EQ(t.concealed(), 0u);
  EXPECT_EQ(t.jumps(), 1u);
  const uint32_t span = ts_of(out.back()) + 160 - ts_of(out.front());
  EXPECT_NEAR(double(span), double(in.packets.size() * 480), 160.0);
  EXPECT_NEAR(double(out.size()), double((in.packets.size() - 3) * 3), 1.0);
  int jumps = 0;
  for (size_t i = 1; i < out.size(); ++i) {
    const uint32_t step = ts_of(out[i]) - ts_of(out[i - 1]);
    if (step != 160u) {
      ++jumps;
      EXPECT_EQ(step, 160u + 1440u);
      EXPECT_TRUE(uint8_t(out[i][1]) & 0x80);  // the marker after the gap
    }
  }
  EXPECT_EQ(jumps, 1);
}

TEST(Transcoder, ReorderedAndDuplicatedOpusIsDroppedOnceItsTimeIsFilled) {
  const auto in = opus_tone(1000, 20, 1);
  std::vector<std::string> sent(in.packets.begin(), in.packets.end());
  std::swap(sent[20], sent[21]);             // 21 before 20: 20 is concealed, then late
  sent.insert(sent.begin() + 30, sent[29]);  // 29 twice
  Transcoder t(CodecId::Opus, CodecId::Pcmu, 0);
  const auto out = through(t, sent);
  EXPECT_EQ(t.late(), 2u);
  EXPECT_EQ(t.concealed(), 1u);
  EXPECT_NEAR(double(ts_of(out.back()) + 160 - ts_of(out.front())), 8000.0, 160.0);
}

// A coder as tgcalls runs it for voice: SILK with in-band FEC for a lossy path.
OpusEncoder* fec_encoder(bool fec) {
  int err = 0;
  OpusEncoder* e = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err);
  opus_encoder_ctl(e, OPUS_SET_BITRATE(20000));
  opus_encoder_ctl(e, OPUS_SET_BANDWIDTH(OPUS_BANDWIDTH_WIDEBAND));
  opus_encoder_ctl(e, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
  opus_encoder_ctl(e, OPUS_SET_INBAND_FEC(fec ? 1 : 0));
  opus_encoder_ctl(e, OPUS_SET_PACKET_LOSS_PERC(20));
  return e;
}

int fec_packets(const OpusStream& s) {
  int n = 0;
  for (const auto& p : s.packets)
    n += esg::media::opus_has_fec(reinterpret_cast<const uint8_t*>(p.data()) + 12, p.size() - 12);
  return n;
}

TEST(Transcoder, ALostOpusFrameComesBackFromTheNextPacketsFec) {
  for (const int frame_ms : {20, 60}) {
    OpusEncoder* enc = fec_encoder(true);
    const auto in = opus_tone(440, frame_ms, 2, enc);
    opus_encoder_destroy(enc);
    ASSERT_LT(uint8_t(in.packets[10][12]) >> 3, 12) << "SILK";
    // Most packets carry LBRR for the one before (what libopus decodes as FEC: checked
    // against its output while this was written).
    EXPECT_GE(fec_packets(in), int(in.packets.size()) / 2) << frame_ms;
    size_t lost = 10;
    while (lost + 1 < in.packets.size() &&
           !esg::media::opus_has_fec(
               reinterpret_cast<const uint8_t*>(in.packets[lost + 1].data()) + 12,
               in.packets[lost + 1].size() - 12))
      ++lost;
    std::vector<std::string> sent = in.packets;
    sent.erase(sent.begin() + long(lost));
    Transcoder t(CodecId::Opus, CodecId::Pcmu, 0);
    const auto out = through(t, sent);
    EXPECT_EQ(t.concealed(), 1u);
    EXPECT_EQ(t.fec(), 1u) << frame_ms;
    EXPECT_NEAR(double(ts_of(out.back()) + 160 - ts_of(out.front())),
                double(in.packets.size() * in.frame / 6), 160.0);
  }
  // Without FEC in the stream the same loss is extrapolated.
  OpusEncoder* enc = fec_encoder(false);
  const auto in = opus_tone(440, 20, 2, enc);
  opus_encoder_destroy(enc);
  EXPECT_EQ(fec_packets(in), 0);
  std::vector<std::string> sent = in.packets;
  sent.erase(sent.begin() + 20);
  Transcoder t(CodecId::Opus, CodecId::Pcmu, 0);
  through(t, sent);
  EXPECT_EQ(t.concealed(), 1u);
  EXPECT_EQ(t.fec(), 0u);
}

TEST(Codec, CeltAndShortPacketsHaveNoFec) {
  const auto in = opus_tone(1000, 20, 0.2);  // esg's encoder: CELT for a tone at 32 kbit/s
  EXPECT_EQ(fec_packets(in), 0);
  const uint8_t toc_only[] = {0x08};
  EXPECT_FALSE(esg::media::opus_has_fec(toc_only, 1));
  const uint8_t code3_empty[] = {0x0B, 0x00};
  EXPECT_FALSE(esg::media::opus_has_fec(code3_empty, 2));
}

// G.711 sources are taken as they come: a lost packet is not filled (the far side conceals).
TEST(Transcoder, G711SourceKeepsItsBehaviourOnLoss) {
  auto pcma = tone_packets(CodecId::Pcma, 8, 1000);
  pcma.erase(pcma.begin() + 10);
  Transcoder t(CodecId::Pcma, CodecId::Pcmu, 0);
  const auto out = through(t, pcma);
  EXPECT_EQ(out.size(), 49u);
  EXPECT_EQ(t.concealed(), 0u);
}

}  // namespace
