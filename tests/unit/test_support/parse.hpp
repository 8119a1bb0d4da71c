#pragma once
// Parses a message a test wrote, failing the test (with the reason and the text) when it does
// not parse: the unit tests of every module that takes messages share it.

#include <gtest/gtest.h>

#include <string>

#include "sip/message.hpp"

namespace esg::test {

inline sip::Message parse(const std::string& text) {
  auto m = sip::parse_message(text);
  EXPECT_TRUE(m) << (m ? "" : m.error().reason) << "\n" << text;
  return std::move(*m);
}

}  // namespace esg::test
