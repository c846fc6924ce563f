// Pure logic for issue 16: the runtime mount kinds of a profile, mountinfo
// parsing, and the profile a captured mount table becomes.
#include <gtest/gtest.h>

#include "mntscale/model/profile.h"
#include "mntscale/runtimes/runtime.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

std::string Error(const nlohmann::json& j) {
  try {
    Profile::FromJson(j, "t.json");
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(RuntimeProfileFields, BadValuesAreNamed) {
  EXPECT_NE(Error({{"cgroup", "v3"}}).find("'cgroup'"), std::string::npos);
  EXPECT_NE(Error({{"cgroup", "v1"}}).find("'cgroup_controllers'"), std::string::npos);
  EXPECT_NE(Error({{"cgroup_controllers", {"cpu"}}}).find("'cgroup_controllers'"),
            std::string::npos);
  EXPECT_NE(Error({{"cgroup", "v1"}, {"cgroup_controllers", {"../x"}}}).find("'../x'"),
            std::string::npos);
  EXPECT_NE(Error({{"masked_paths", {"proc/acpi"}}}).find("'proc/acpi'"), std::string::npos);
  EXPECT_NE(Error({{"readonly_paths", {"/proc/../etc"}}}).find("'/proc/../etc'"),
            std::string::npos);
  EXPECT_NE(Error({{"readonly_paths", "/proc/sys"}}).find("list of strings"), std::string::npos);
  EXPECT_NE(Error({{"devpts", true}, {"dev", false}}).find("'devpts'"), std::string::npos);
  EXPECT_NE(Error({{"bind_paths", {"/a", "/b"}}, {"binds", 1}}).find("'bind_paths'"),
            std::string::npos);
  EXPECT_NE(Error({{"captured", 3}}).find("'captured'"), std::string::npos);
  EXPECT_NE(Error({{"masked_files", "host-null"}}).find("'masked_files'"), std::string::npos);
}

TEST(RuntimeProfileFields, CountAndRoundTrip) {
  Profile p = Profile::FromJson({{"name", "r"},
                                 {"bind_paths", {"/etc/hosts", "/var/run/secrets:ro"}},
                                 {"devpts", true},
                                 {"readonly_paths", {"/proc/sys", "/proc/bus"}},
                                 {"masked_paths", {"/proc/kcore"}},
                                 {"cgroup", "v1"},
                                 {"cgroup_controllers", {"cpu,cpuacct", "name=systemd"}},
                                 {"readonly_root", true}},
                                "t.json");
  EXPECT_EQ(p.binds, 2);  // bind_paths alone sets the count
  // root + 2 binds + proc + dev/shm/mqueue + devpts + 2 ro + 1 masked + tmpfs + 2 cgroups
  EXPECT_EQ(p.MountsPerContainer(), 1 + 2 + 1 + 3 + 1 + 2 + 1 + 1 + 2);
  Profile q = Profile::FromJson(p.ToJson(), "round.json");
  EXPECT_EQ(q.ToJson(), p.ToJson());
  bool ro = false;
  EXPECT_EQ(SplitBindPath("/var/run/secrets:ro", &ro), "/var/run/secrets");
  EXPECT_TRUE(ro);
  EXPECT_EQ(SplitBindPath("/etc/hosts", &ro), "/etc/hosts");
  EXPECT_FALSE(ro);
}

TEST(RuntimeProfileFields, OldProfilesKeepTheirJson) {
  nlohmann::json j = Profile().ToJson();
  for (const char* k : {"bind_paths", "devpts", "readonly_paths", "masked_paths", "masked_files",
                        "cgroup", "cgroup_controllers", "readonly_root", "captured"}) {
    EXPECT_FALSE(j.contains(k)) << k;
  }
  EXPECT_EQ(Profile().MountsPerContainer(), 8);
}

// runc 1.1.5's default container on a cgroup v1 hybrid host (abridged).
const std::vector<std::string> kRunc = {
    "116 93 0:42 /b/rootfs / ro,relatime - overlay overlay rw,lowerdir=/l",
    "117 116 0:44 / /proc rw,relatime - proc proc rw",
    "118 116 0:45 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755",
    "119 118 0:46 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5",
    "120 118 0:47 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw",
    "121 118 0:43 / /dev/mqueue rw,nosuid,nodev,noexec,relatime - mqueue mqueue rw",
    "122 116 0:48 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro",
    "123 122 0:49 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755",
    "124 123 0:29 /c1 /sys/fs/cgroup/cpu ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,cpu",
    "132 123 0:37 /c1 /sys/fs/cgroup/systemd ro,nosuid - cgroup cgroup rw,name=systemd",
    "97 117 0:44 /sys /proc/sys ro,relatime - proc proc rw",
    "98 117 0:50 / /proc/acpi ro,relatime - tmpfs tmpfs ro",
    "99 117 0:45 /null /proc/keys rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755",
    "101 122 0:51 / /sys/firmware ro,relatime - tmpfs tmpfs ro",
    "102 116 0:52 /hosts /etc/host\\040file rw shared:7 - tmpfs tmpfs rw",
    "103 116 0:53 /t /var/run/secrets ro master:3 - tmpfs tmpfs rw",
};

TEST(CapturedTable, ParsesMountinfo) {
  auto m = ParseMountinfo(kRunc);
  ASSERT_EQ(m.size(), kRunc.size());
  EXPECT_EQ(m[0].mount_point, "/");
  EXPECT_TRUE(m[0].readonly);
  EXPECT_EQ(m[0].fstype, "overlay");
  EXPECT_EQ(m[8].super_options, "rw,cpu");
  EXPECT_EQ(m[14].mount_point, "/etc/host file");  // octal escapes undone
  EXPECT_EQ(m[14].propagation, "shared");
  EXPECT_EQ(m[15].propagation, "slave");
  EXPECT_EQ(m[1].propagation, "private");
}

TEST(CapturedTable, BecomesTheProfileThatReproducesIt) {
  CaptureResult cap{"runc 1.1.5", "`runc spec` default", "", ParseMountinfo(kRunc)};
  Profile p = ProfileFromCapture(cap, "runc-test", 3);
  EXPECT_TRUE(p.readonly_root && p.proc && p.sys && p.dev && p.devpts);
  EXPECT_EQ(p.cgroup, CgroupMount::kV1);
  EXPECT_EQ(p.cgroup_controllers, (std::vector<std::string>{"cpu", "name=systemd"}));
  EXPECT_EQ(p.readonly_paths, (std::vector<std::string>{"/proc/sys"}));
  EXPECT_EQ(p.masked_paths,
            (std::vector<std::string>{"/proc/acpi", "/proc/keys", "/sys/firmware"}));
  EXPECT_EQ(p.bind_paths, (std::vector<std::string>{"/etc/host file", "/var/run/secrets:ro"}));
  EXPECT_EQ(p.MountsPerContainer(), static_cast<int>(kRunc.size()));
  EXPECT_EQ(p.captured["mount_count"], kRunc.size());
  EXPECT_EQ(MountKeys(p.captured["mounts"]), MountKeys(cap.mounts));
}

// crun 1.8.1's default container in a cgroup v2 guest (Debian 6.1, issue 24,
// abridged): masked files are the host's /dev/null (devtmpfs), read-only,
// where runc binds the container's own (tmpfs, read-write).
const std::vector<std::string> kCrunV2 = {
    "60 40 0:33 / / ro,relatime - overlay overlay rw,lowerdir=/l",
    "61 60 0:35 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw",
    "62 60 0:36 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755",
    "63 60 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw",
    "64 61 0:5 /null /proc/kcore ro,nosuid,relatime - devtmpfs devtmpfs rw,size=1000k",
    "65 61 0:37 / /proc/acpi ro,relatime - tmpfs tmpfs ro,size=0k",
};

TEST(CapturedTable, CrunMaskedFilesAreTheHostsNullReadOnly) {
  CaptureResult cap{"crun 1.8.1", "`crun spec` default", "", ParseMountinfo(kCrunV2)};
  Profile p = ProfileFromCapture(cap, "crun-test", 2);
  EXPECT_EQ(p.cgroup, CgroupMount::kV2);
  EXPECT_EQ(p.masked_paths, (std::vector<std::string>{"/proc/kcore", "/proc/acpi"}));
  EXPECT_EQ(p.masked_files, MaskedFiles::kHostNullRo);
  EXPECT_EQ(p.ToJson()["masked_files"], "host-null-ro");
  EXPECT_EQ(Profile::FromJson(p.ToJson(), "round.json").masked_files, MaskedFiles::kHostNullRo);
  // runc's table keeps the default, and its JSON does not name the field.
  Profile r = ProfileFromCapture({"runc 1.1.5", "", "", ParseMountinfo(kRunc)}, "runc-test", 3);
  EXPECT_EQ(r.masked_files, MaskedFiles::kContainerNull);
  EXPECT_FALSE(r.ToJson().contains("masked_files"));
}

// issue 28: the profile a spec would make is checked before the runtime runs.
TEST(SpecProfile, LimitsCheckedBeforeTheRuntimeRuns) {
  nlohmann::json spec = {
      {"ociVersion", "1.0.2"},
      {"root", {{"path", "rootfs"}, {"readonly", true}}},
      {"linux", {{"maskedPaths", {"/proc/kcore"}}, {"readonlyPaths", {"/proc/sys"}}}},
      {"mounts",
       {{{"destination", "/proc"}, {"type", "proc"}},
        {{"destination", "/dev"}, {"type", "tmpfs"}},
        {{"destination", "/sys/fs/cgroup"}, {"type", "cgroup"}},
        {{"destination", "/data/"}, {"type", "bind"}, {"options", {"rbind", "ro"}}}}}};
  Profile p = ProfileFromSpec(spec, 1);
  EXPECT_TRUE(p.proc && p.dev && p.readonly_root);
  EXPECT_EQ(p.bind_paths, std::vector<std::string>{"/data:ro"});
  EXPECT_EQ(p.masked_paths, std::vector<std::string>{"/proc/kcore"});
  EXPECT_EQ(p.readonly_paths, std::vector<std::string>{"/proc/sys"});
  for (int i = 0; i < 1001; ++i) {
    spec["mounts"].push_back({{"destination", "/m" + std::to_string(i)}, {"type", "bind"}});
  }
  try {
    ProfileFromSpec(spec, 1);
    ADD_FAILURE() << "1002 binds accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("'binds' = 1002"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mntscale

TEST(MountKeysDiff, NamesWhatIsMissingAndWhatIsExtra) {
  using mntscale::MountKeysDiff;
  const std::vector<std::string> want = {"/ overlay rw private", "/proc proc rw private"};
  EXPECT_EQ(MountKeysDiff(want, want), "");
  EXPECT_EQ(MountKeysDiff(want, {"/ overlay rw private", "/run tmpfs rw private"}),
            "\n  missing: /proc proc rw private\n  extra:   /run tmpfs rw private");
}
