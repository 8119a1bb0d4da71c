// The gateway's own tones on autoanswered calls (issue 23): WAV files read as 48 kHz mono, the
// 425 Hz cadences, and the player's pace; the line fields that name them.
#include "telegram/tones.hpp"

#include <gtest/gtest.h>
#include <opus/opus.h>

#include <boost/asio/io_context.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "telegram/line_config.hpp"

namespace {

using esg::telegram::cadence_pcm;
using esg::telegram::load_wav;
using esg::telegram::Pcm48;
using esg::telegram::TonePlayer;

void le(std::string& s, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    s += char(v >> (8 * i));
}

std::string wav(uint32_t rate, uint16_t channels, uint16_t bits, const std::vector<int16_t>& pcm) {
  std::string data;
  for (int16_t v : pcm)
    le(data, uint16_t(v), 2);
  std::string s = "RIFF";
  le(s, uint32_t(36 + data.size()), 4);
  s += "WAVEfmt ";
  le(s, 16, 4);
  le(s, 1, 2);
  le(s, channels, 2);
  le(s, rate, 4);
  le(s, rate * channels * bits / 8, 4);
  le(s, channels * bits / 8, 2);
  le(s, bits, 2);
  s += "data";
  le(s, uint32_t(data.size()), 4);
  return s + data;
}

std::string write(const std::string& name, const std::string& bytes) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// The share of a signal's energy at `freq` (Goertzel), 0..1.
double share_at(const int16_t* x, size_t n, double freq, double rate) {
  const double w = 2 * M_PI * freq / rate, k = 2 * std::cos(w);
  double s1 = 0, s2 = 0, energy = 0;
  for (size_t i = 0; i < n; ++i) {
    const double s = x[i] + k * s1 - s2;
    s2 = s1;
    s1 = s;
    energy += double(x[i]) * x[i];
  }
  const double power = s1 * s1 + s2 * s2 - k * s1 * s2;
  return energy > 0 ? 2 * power / (double(n) * energy) : 0;
}

TEST(Tones, AWavFileOfAnyRateBecomes48kHzMono) {
  std::vector<int16_t> tone(8000);  // 1 s of 425 Hz at 8 kHz
  for (size_t i = 0; i < tone.size(); ++i)
    tone[i] = int16_t(8000 * std::sin(2 * M_PI * 425 * double(i) / 8000));
  auto pcm = load_wav(write("ring8k.wav", wav(8000, 1, 16, tone)));
  ASSERT_TRUE(pcm) << pcm.error();
  EXPECT_NEAR(double(pcm->size()), 48000, 100);
  EXPECT_GT(share_at(pcm->data() + 4800, 9600, 425, 48000), 0.8);
  // Stereo is mixed down.
  std::vector<int16_t> stereo(2 * 4800, 1000);
  auto mixed = load_wav(write("stereo.wav", wav(48000, 2, 16, stereo)));
  ASSERT_TRUE(mixed) << mixed.error();
  EXPECT_EQ(mixed->size(), 4800u);
  EXPECT_EQ((*mixed)[100], 1000);
}

TEST(Tones, AFileThatCannotBePlayedSaysWhy) {
  EXPECT_NE(load_wav("/nonexistent/ring.wav").error().find("cannot read"), std::string::npos);
  EXPECT_NE(load_wav(write("text.wav", "hello, not a wav")).error().find("not a WAV"),
            std::string::npos);
  EXPECT_NE(load_wav(write("8bit.wav", wav(8000, 1, 8, {1, 2, 3}))).error().find("16-bit"),
            std::string::npos);
  EXPECT_NE(load_wav(write("empty.wav", wav(8000, 1, 16, {}))).error().find("no audio"),
            std::string::npos);
}

TEST(Tones, TheCadencesAre425HzOnAndSilentOff) {
  const Pcm48 ring = cadence_pcm(esg::telegram::kRingback);
  ASSERT_EQ(ring.size(), 5u * 48000);
  EXPECT_GT(share_at(ring.data() + 4800, 38400, 425, 48000), 0.9);
  for (size_t i = 48000; i < ring.size(); ++i)
    ASSERT_EQ(ring[i], 0) << i;
  EXPECT_EQ(cadence_pcm(esg::telegram::kBusy).size(), 48000u);
}

// 20 ms Opus frames at the clock's pace, decoding to the tone; stop() ends them.
TEST(Tones, ThePlayerSendsOpusFramesAtTheClocksPace) {
  boost::asio::io_context io;
  std::vector<std::string> frames;
  TonePlayer player(io, [&](std::string_view f) { frames.emplace_back(f); });
  player.play(std::make_shared<const Pcm48>(cadence_pcm({425, 1000, 0})));
  io.run_for(std::chrono::milliseconds(500));
  EXPECT_GE(frames.size(), 24u);
  EXPECT_LE(frames.size(), 27u);
  int err = 0;
  OpusDecoder* d = opus_decoder_create(48000, 1, &err);
  ASSERT_EQ(err, OPUS_OK);
  std::vector<int16_t> pcm;
  for (const auto& f : frames) {
    int16_t out[960];
    const int n = opus_decode(d, reinterpret_cast<const unsigned char*>(f.data()),
                              opus_int32(f.size()), out, 960, 0);
    ASSERT_EQ(n, 960);
    pcm.insert(pcm.end(), out, out + n);
  }
  opus_decoder_destroy(d);
  EXPECT_GT(share_at(pcm.data() + 4800, pcm.size() - 4800, 425, 48000), 0.8);
  player.stop();
  const size_t sent = frames.size();
  io.restart();
  io.run_for(std::chrono::milliseconds(200));
  EXPECT_EQ(frames.size(), sent);
  EXPECT_FALSE(player.playing());
}

TEST(LineConfig, AutoanswerFieldsAndTheirFilesAreChecked) {
  nlohmann::json j = {{"code", "tg1"},
                      {"api_id", 12345},
                      {"api_hash", "0123456789abcdef0123456789abcdef"},
                      {"pbx", "pbx1"}};
  auto l = esg::telegram::line_from_json(j);
  ASSERT_TRUE(l);
  EXPECT_FALSE(l->autoanswer);
  EXPECT_EQ(l->answer_timeout, 60);
  j["autoanswer"] = true;
  j["ringback"] = write("ok.wav", wav(16000, 1, 16, std::vector<int16_t>(1600, 5)));
  l = esg::telegram::line_from_json(j);
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_TRUE(l->autoanswer);
  EXPECT_EQ(esg::telegram::to_stored_json(*l)["ringback"], j["ringback"]);
  j["busy"] = "/nonexistent/busy.wav";
  l = esg::telegram::line_from_json(j);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().field, "busy");
  j.erase("busy");
  // menu_dtmf takes the key in the answered call: it needs autoanswer and a menu.
  j["menu_dtmf"] = true;
  l = esg::telegram::line_from_json(j);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().field, "menu_dtmf");
  j["menu"] = nlohmann::json::array({{{"key", "1"}, {"label", "Sales"}}});
  j["menu_prompt"] = "/nonexistent/prompt.wav";
  l = esg::telegram::line_from_json(j);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().field, "menu_prompt");
  j.erase("menu_prompt");
  l = esg::telegram::line_from_json(j);
  ASSERT_TRUE(l) << l.error().field << ": " << l.error().message;
  EXPECT_EQ(l->menu_timeout, 20);
  j["autoanswer"] = false;
  l = esg::telegram::line_from_json(j);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().field, "menu_dtmf");
  j["autoanswer"] = true;
  j.erase("menu_dtmf");
  j["answer_timeout"] = 2;
  l = esg::telegram::line_from_json(j);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().field, "answer_timeout");
}

}  // namespace
