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

}  // namespace
