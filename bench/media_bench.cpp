// Transcoding cost in process (issue 7): one direction of a call is 50 packets a second; a
// G.711<->Opus channel is both directions (A-law to Opus and Opus to A-law). Channels per core
// = one second / the time for one second of audio both ways.

#include <benchmark/benchmark.h>

#include <cmath>
#include <string>
#include <vector>

#include "media/codec.hpp"

namespace {

using esg::media::CodecId;
using esg::media::Transcoder;

std::vector<std::string> speechlike_packets(CodecId codec, uint8_t pt, int count) {
  const auto& info = esg::media::codec_info(codec);
  auto enc = esg::media::make_encoder(codec);
  const size_t frame = info.sample_rate / 50;
  std::vector<std::string> out;
  for (int f = 0; f < count; ++f) {
    std::vector<int16_t> pcm(frame);
    for (size_t i = 0; i < frame; ++i) {
      const double t = double(size_t(f) * frame + i) / info.sample_rate;
      // A few harmonics with a slow envelope: closer to voice than a pure tone.
      pcm[i] = int16_t(4000 * (1 + std::sin(2 * M_PI * 3 * t)) *
                       (std::sin(2 * M_PI * 220 * t) + 0.5 * std::sin(2 * M_PI * 660 * t)));
    }
    std::string p(12 + 1500, '\0');
    p[0] = char(0x80);
    p[1] = char(pt);
    // Consecutive sequence numbers and timestamps: an Opus source's timeline is followed
    // (issue 22), a packet that repeats a timestamp would be dropped as a duplicate.
    p[2] = char(f >> 8);
    p[3] = char(f);
    const uint32_t ts = uint32_t(f) * info.clock_rate / 50;
    for (int i = 0; i < 4; ++i)
      p[size_t(4 + i)] = char(ts >> (24 - 8 * i));
    const int n = enc->encode(pcm.data(), frame, reinterpret_cast<uint8_t*>(p.data()) + 12, 1500);
    p.resize(12 + size_t(n));
    out.push_back(std::move(p));
  }
  return out;
}

// One second of audio each way through a G.711 <-> Opus channel.
void BM_Transcode_G711_Opus_Channel(benchmark::State& state) {
  const auto alaw = speechlike_packets(CodecId::Pcma, 8, 50);
  const auto opus = speechlike_packets(CodecId::Opus, 111, 50);
  Transcoder to_opus(CodecId::Pcma, CodecId::Opus, 111);
  Transcoder to_alaw(CodecId::Opus, CodecId::Pcma, 8);
  std::vector<std::string> out;
  for (auto _ : state) {
    for (int i = 0; i < 50; ++i) {
      out.clear();
      to_opus.push(alaw[size_t(i)], out);
      to_alaw.push(opus[size_t(i)], out);
      benchmark::DoNotOptimize(out.data());
    }
  }
  // An iteration is one channel-second: items per second = channels one core carries.
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_Transcode_G711_Opus_Channel)->Unit(benchmark::kMillisecond);

// Opus to A-law with every tenth packet lost: the cost of concealing (PLC) on top of decoding.
void BM_Transcode_Opus_Alaw_10pct_Loss(benchmark::State& state) {
  const auto opus = speechlike_packets(CodecId::Opus, 111, 50);
  Transcoder to_alaw(CodecId::Opus, CodecId::Pcma, 8);
  std::vector<std::string> out;
  for (auto _ : state) {
    for (int i = 0; i < 50; ++i) {
      if (i % 10 == 5) continue;
      out.clear();
      to_alaw.push(opus[size_t(i)], out);
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_Transcode_Opus_Alaw_10pct_Loss)->Unit(benchmark::kMillisecond);

// The same without loss, for the difference.
void BM_Transcode_Opus_Alaw(benchmark::State& state) {
  const auto opus = speechlike_packets(CodecId::Opus, 111, 50);
  Transcoder to_alaw(CodecId::Opus, CodecId::Pcma, 8);
  std::vector<std::string> out;
  for (auto _ : state) {
    for (int i = 0; i < 50; ++i) {
      out.clear();
      to_alaw.push(opus[size_t(i)], out);
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_Transcode_Opus_Alaw)->Unit(benchmark::kMillisecond);

void BM_Transcode_Alaw_Ulaw_Channel(benchmark::State& state) {
  const auto alaw = speechlike_packets(CodecId::Pcma, 8, 50);
  const auto ulaw = speechlike_packets(CodecId::Pcmu, 0, 50);
  Transcoder a_to_u(CodecId::Pcma, CodecId::Pcmu, 0);
  Transcoder u_to_a(CodecId::Pcmu, CodecId::Pcma, 8);
  std::vector<std::string> out;
  for (auto _ : state) {
    for (int i = 0; i < 50; ++i) {
      out.clear();
      a_to_u.push(alaw[size_t(i)], out);
      u_to_a.push(ulaw[size_t(i)], out);
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_Transcode_Alaw_Ulaw_Channel)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
