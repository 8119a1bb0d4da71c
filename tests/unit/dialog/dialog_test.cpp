#include "dialog/dialog.hpp"

#include <gtest/gtest.h>

#include "test_support/parse.hpp"

namespace esg::dialog {
namespace {

using test::parse;

const std::string kInvite =
    "INVITE sip:100@127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKi1\r\n"
    "Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>\r\n"
    "From: \"Alice\" <sip:alice@127.0.0.2>;tag=a1\r\n"
    "To: <sip:100@127.0.0.1>\r\n"
    "Call-ID: dlg-1\r\n"
    "CSeq: 10 INVITE\r\n"
    "Contact: <sip:alice@127.0.0.2:5060>\r\n"
    "Content-Length: 0\r\n\r\n";

TEST(Dialog, UasTakesRouteSetInOrderAndTheCallersContact_12_1_1) {
  auto d = Dialog::as_uas(parse(kInvite), "b1", "<sip:esg@127.0.0.1:5080>");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->id(), (DialogId{"dlg-1", "b1", "a1"}));
  EXPECT_EQ(d->remote_target(), "sip:alice@127.0.0.2:5060");
  ASSERT_EQ(d->route_set().size(), 2u);
  EXPECT_EQ(d->route_set()[0], "<sip:p1.example;lr>");
  EXPECT_EQ(d->remote_cseq(), 10u);
  // A BYE from us: Request-URI is the remote target, Route the route set, tags swapped.
  auto bye = parse(d->build_request("BYE", "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKb1"));
  EXPECT_EQ(bye.request_uri().text, "sip:alice@127.0.0.2:5060");
  auto routes = bye.routes();
  ASSERT_TRUE(routes);
  ASSERT_EQ(routes->size(), 2u);
  EXPECT_EQ((*routes)[0].uri.host, "p1.example");
  EXPECT_EQ(bye.from_tag(), "b1");
  EXPECT_EQ(bye.to_tag(), "a1");
  EXPECT_EQ(bye.to().display_name_unquoted(), "Alice");
  EXPECT_EQ(bye.cseq().method, "BYE");
  EXPECT_EQ(bye.cseq().number, d->local_cseq());
}

TEST(Dialog, UacReversesTheRouteSetAndCountsItsCSeq_12_1_2) {
  const std::string ok =
      "SIP/2.0 200 OK\r\n"
      "Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKi1\r\n"
      "Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>\r\n"
      "From: \"Alice\" <sip:alice@127.0.0.2>;tag=a1\r\n"
      "To: <sip:100@127.0.0.1>;tag=b9\r\n"
      "Call-ID: dlg-1\r\nCSeq: 10 INVITE\r\n"
      "Contact: <sip:100@127.0.0.5:5070>\r\nContent-Length: 0\r\n\r\n";
  auto d = Dialog::as_uac(parse(kInvite), parse(ok), "<sip:alice@127.0.0.2:5060>");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->state(), DialogState::Confirmed);
  EXPECT_EQ(d->id(), (DialogId{"dlg-1", "a1", "b9"}));
  EXPECT_EQ(d->route_set().front(), "<sip:p2.example;lr>");
  EXPECT_EQ(d->remote_target(), "sip:100@127.0.0.5:5070");
  // The ACK for the 2xx reuses the INVITE's CSeq number; the BYE takes the next one.
  auto ack = parse(d->build_request("ACK", "SIP/2.0/UDP 127.0.0.2;branch=z9hG4bKa", 10));
  EXPECT_EQ(ack.cseq().number, 10u);
  auto bye = parse(d->build_request("BYE", "SIP/2.0/UDP 127.0.0.2;branch=z9hG4bKb"));
  EXPECT_EQ(bye.cseq().number, 11u);
  EXPECT_EQ(bye.from_tag(), "a1");
  EXPECT_EQ(bye.to_tag(), "b9");
}

TEST(Dialog, NeedsTagsAndAContact_12_1) {
  EXPECT_EQ(Dialog::as_uas(parse(kInvite), "", "").error(), DialogErrc::MissingTag);
  std::string no_contact = kInvite;
  no_contact.erase(no_contact.find("Contact:"),
                   std::string("Contact: <sip:alice@127.0.0.2:5060>\r\n").size());
  EXPECT_EQ(Dialog::as_uas(parse(no_contact), "b1", "").error(), DialogErrc::NoContact);
}

TEST(Dialog, RemoteCSeqMustGrowAndRefreshesMoveTheTarget_12_2_2) {
  auto d = Dialog::as_uas(parse(kInvite), "b1", "");
  ASSERT_TRUE(d);
  auto in_dialog = [](const std::string& method, int cseq, const std::string& contact) {
    return parse(
        method + " sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK" +
        std::to_string(cseq) +
        "\r\nFrom: <sip:alice@127.0.0.2>;tag=a1\r\n"
        "To: <sip:100@127.0.0.1>;tag=b1\r\nCall-ID: dlg-1\r\nCSeq: " +
        std::to_string(cseq) + " " + method + "\r\n" + contact + "Content-Length: 0\r\n\r\n");
  };
  EXPECT_TRUE(d->on_request(in_dialog("ACK", 10, "")));  // ACK keeps the INVITE's number
  EXPECT_EQ(d->on_request(in_dialog("INFO", 9, "")).error(), DialogErrc::CSeqTooLow);
  EXPECT_TRUE(d->on_request(in_dialog("INVITE", 11, "Contact: <sip:alice@127.0.0.8:5060>\r\n")));
  EXPECT_EQ(d->remote_target(), "sip:alice@127.0.0.8:5060");
  EXPECT_EQ(d->on_request(in_dialog("INFO", 11, "")).error(), DialogErrc::CSeqTooLow);
  EXPECT_TRUE(d->on_request(in_dialog("BYE", 12, "")));
  EXPECT_EQ(d->state(), DialogState::Terminated);
  auto other = parse(kInvite);  // no To tag: not this dialog
  EXPECT_EQ(d->on_request(other).error(), DialogErrc::WrongDialog);
}

}  // namespace
}  // namespace esg::dialog
