// Container profiles and presets are data files: every shipped file loads,
// the shapes are what their names promise, and a bad file names its field.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "mntscale/suite/preset.h"
#include "mntscale/model/profile.h"
#include "mntscale/sys/sys.h"
#include "mntscale/run/topology.h"

namespace mntscale {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> FilesIn(const std::string& dir, const std::string& ext) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(std::string(MNTSCALE_SOURCE_DIR) + "/" + dir)) {
    if (e.path().extension() == ext) out.push_back(e.path());
  }
  return out;
}

std::string UsageMessage(const nlohmann::json& j) {
  try {
    Profile::FromJson(j, "t.json");
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(ProfileFiles, EveryProfileLoads) {
  auto files = FilesIn("profiles", ".json");
  ASSERT_GE(files.size(), 4u);
  for (const auto& f : files) {
    SCOPED_TRACE(f.string());
    Profile p = Profile::Load(f.string());
    EXPECT_EQ(p.name, f.stem().string()) << "a profile's name is its file name";
    EXPECT_GE(p.MountsPerContainer(), 1);
  }
}

TEST(ProfileFiles, ShapesMatchTheirNames) {
  Profile minimal = Profile::Load("minimal");
  EXPECT_EQ(minimal.layers, 1);
  EXPECT_EQ(minimal.binds, 0);
  EXPECT_EQ(minimal.MountsPerContainer(), 1);

  Profile k8s = Profile::Load("k8s-default");
  EXPECT_EQ(k8s.layers, 8);
  EXPECT_EQ(k8s.binds, 5);  // hosts, resolv.conf, hostname, termination-log, token
  EXPECT_TRUE(k8s.proc && k8s.sys && k8s.dev);
  EXPECT_EQ(k8s.MountsPerContainer(), 11);

  Profile nf = Profile::Load("netflix-50-layer-idmap.json");
  EXPECT_EQ(nf.layers, 50);
  EXPECT_EQ(nf.idmap, IdmapStrategy::kPerLayer);

  EXPECT_EQ(Profile::Load("shared-namespace").ns_mode, NsMode::kShared);
}

TEST(ProfileFiles, BadFieldsAreNamed) {
  EXPECT_NE(UsageMessage({{"layrs", 3}}).find("'layrs'"), std::string::npos);
  EXPECT_NE(UsageMessage({{"layers", "3"}}).find("'layers'"), std::string::npos);
  EXPECT_NE(UsageMessage({{"layers", 0}}).find("'layers'"), std::string::npos);
  EXPECT_NE(UsageMessage({{"idmap", "sometimes"}}).find("'idmap'"), std::string::npos);
  EXPECT_NE(UsageMessage({{"proc", 1}}).find("'proc'"), std::string::npos);
  EXPECT_THROW(Profile::Load("no-such-profile"), UsageError);
}

TEST(PresetFiles, EveryPresetLoads) {
  auto files = FilesIn("presets", ".json");
  ASSERT_GE(files.size(), 1u);
  for (const auto& f : files) {
    SCOPED_TRACE(f.string());
    Preset p = Preset::Load(f.string());
    EXPECT_EQ(p.Id(), f.stem().string()) << "a preset's file is NAME-vVERSION.json";
    EXPECT_FALSE(p.scenarios.empty());
    if (!p.profile.empty()) EXPECT_NO_THROW(Profile::Load(p.profile));
  }
  EXPECT_EQ(Preset::Load("nightly-v1").name, "nightly");
  EXPECT_EQ(Preset::Load("nightly-v1").invocations, 1);
  EXPECT_GE(Preset::Load("nightly-v2").invocations, 4) << "compare needs >= 4 invocations per side";
  // A bare name is its newest version.
  EXPECT_EQ(Preset::Load("nightly").Id(), "nightly-v2");
  EXPECT_EQ(Preset::Load("procurement").Id(), "procurement-v1");
  EXPECT_THROW(Preset::Load("no-such-preset"), UsageError);
  Preset proc = Preset::Load("procurement-v1");
  EXPECT_EQ(proc.budget_s, 3600);
  EXPECT_GE(proc.invocations, 4);
  EXPECT_EQ(proc.scenarios.at(0).placements,
            (std::vector<std::string>{"spread", "compact", "socket:0", "spread,smt-off"}));
}

TEST(PresetFiles, BadFieldsAreNamed) {
  auto msg = [](const nlohmann::json& j) -> std::string {
    try {
      Preset::FromJson(j, "p.json");
    } catch (const UsageError& e) {
      return e.what();
    }
    return "";
  };
  nlohmann::json ok = {{"name", "x"}, {"version", 1}, {"scenarios", {{{"scenario", "path_walk"}}}}};
  EXPECT_EQ(msg(ok), "");
  auto with = [&](const char* k, nlohmann::json v) {
    nlohmann::json j = ok;
    j[k] = std::move(v);
    return msg(j);
  };
  EXPECT_NE(with("windows", 0).find("'windows'"), std::string::npos);
  EXPECT_NE(with("version", 0).find("'version'"), std::string::npos);
  EXPECT_NE(with("mode", "fiber").find("'mode'"), std::string::npos);
  EXPECT_NE(with("invocations", 0).find("'invocations'"), std::string::npos);
  EXPECT_NE(with("invocations", "5").find("'invocations'"), std::string::npos);
  EXPECT_EQ(with("invocations", 5), "");
  EXPECT_NE(with("extra", 1).find("'extra'"), std::string::npos);
  EXPECT_NE(with("scenarios", {{{"scenario", "path_walk"}, {"set", {{"workers", true}}}}})
                .find("set.workers"),
            std::string::npos);
}

TEST(TopologyFiles, EveryTopologyFileLoads) {
  int n = 0;
  for (const char* ext : {".synthetic", ".xml"}) {
    for (const auto& f : FilesIn("topologies", ext)) {
      SCOPED_TRACE(f.string());
      EXPECT_GT(Topology::Load(f.string()).summary().pus, 0);
      ++n;
    }
  }
  EXPECT_GE(n, 5);
}


TEST(ProfileValidation, BadFieldIsNamed) {
  auto expect_error = [](const nlohmann::json& j, const std::string& needle) {
    try {
      Profile::FromJson(j, "test.json");
      ADD_FAILURE() << "accepted " << j.dump();
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error({{"layers", 501}}, "'layers'");
  expect_error({{"layers", "ten"}}, "'layers'");
  expect_error({{"ns_mode", "sideways"}}, "'ns_mode'");
  expect_error({{"colour", "blue"}}, "'colour'");
  Profile p = Profile::FromJson({{"name", "x"}, {"layers", 3}, {"binds", 0}}, "ok.json");
  EXPECT_EQ(p.layers, 3);
  EXPECT_EQ(p.MountsPerContainer(), 1 + 0 + 1 + 3);
}

}  // namespace
}  // namespace mntscale
