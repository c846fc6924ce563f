// Session::Kept: state a scenario carries from one point to the next lives in
// the session (not in function-local statics), and is dropped when another
// scenario starts, so nothing one scenario built leaks into the next.
#include <gtest/gtest.h>

#include "mntscale/suite/session.h"

namespace mntscale {
namespace {

struct Counted {
  static inline int alive = 0;
  int n = 0;
  Counted() { ++alive; }
  ~Counted() { --alive; }
};

void CountPoints(Session& s, const Point&, Entry& e) {
  e.Set("n", ++s.Kept<Counted>("points").n);
  e.Set("alive", Counted::alive);
}

int N(const nlohmann::json& entry) { return entry["extra"]["n"].get<int>(); }

TEST(SessionKept, PersistsAcrossPointsAndIsDroppedAtTheNextScenario) {
  SessionConfig config;
  config.quiet = true;
  Session s(config, Topology::Synthetic("pack:1 core:2 pu:1"));
  ScenarioInfo a{.name = "kept_a", .mechanism = "", .expect = "", .axes = {}, .run = CountPoints};
  ScenarioInfo b = a;
  b.name = "kept_b";
  Point p;
  ASSERT_TRUE(s.RunPoint(a, p, 0, 1));
  ASSERT_TRUE(s.RunPoint(a, p, 0, 1));
  ASSERT_TRUE(s.RunPoint(b, p, 0, 1));
  ASSERT_TRUE(s.RunPoint(a, p, 0, 1));
  const auto& e = s.sink().entries();
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(N(e[0]), 1);
  EXPECT_EQ(N(e[1]), 2) << "the second point of a scenario sees the first one's state";
  EXPECT_EQ(N(e[2]), 1) << "another scenario starts from nothing";
  EXPECT_EQ(N(e[3]), 1) << "state is not resurrected when a scenario comes back";
  EXPECT_EQ(e[2]["extra"]["alive"].get<int>(), 1) << "the first scenario's state was not freed";
  s.Finish();
  EXPECT_EQ(Counted::alive, 0);
}

}  // namespace
}  // namespace mntscale
