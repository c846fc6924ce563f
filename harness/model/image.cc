#include "mntscale/model/image.h"

#include <sys/stat.h>

#include <cstring>
#include <tuple>

#include "mntscale/sys/sys.h"

namespace mntscale {

bool ImageShape::operator<(const ImageShape& o) const {
  return std::tie(layers, depth, files_per_dir, binds) <
         std::tie(o.layers, o.depth, o.files_per_dir, o.binds);
}

std::string Image::DeepDir(int level) const {
  std::string p;
  for (int i = 0; i < level; ++i) p += "/d" + std::to_string(i);
  return p;
}

namespace {

std::vector<std::string> BindTargets(int binds) {
  static const char* kRuntime[] = {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname",
                                   "/dev/termination-log", "/run/secrets/token"};
  std::vector<std::string> out;
  for (int i = 0; i < binds; ++i) {
    out.push_back(i < 5 ? kRuntime[i] : "/run/binds/b" + std::to_string(i));
  }
  return out;
}

void Touch(const std::string& path, const std::string& data = "") { WriteFile(path, data); }

}  // namespace

std::string StaticExitElf() {
  constexpr uint64_t kBase = 0x400000;
  constexpr size_t kEhdr = 64, kPhdr = 56;
  const unsigned char code[] = {
      0xb8, 0x3c, 0x00, 0x00, 0x00,  // mov eax, 60 (exit)
      0x31, 0xff,                    // xor edi, edi
      0x0f, 0x05,                    // syscall
  };
  std::string elf(kEhdr + kPhdr + sizeof code, '\0');
  auto put = [&](size_t off, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) elf[off + i] = static_cast<char>(v >> (8 * i));
  };
  const unsigned char ident[] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
  memcpy(elf.data(), ident, sizeof ident);
  put(16, 2, 2);                      // e_type: ET_EXEC
  put(18, 0x3e, 2);                   // e_machine: x86-64
  put(20, 1, 4);                      // e_version
  put(24, kBase + kEhdr + kPhdr, 8);  // e_entry
  put(32, kEhdr, 8);                  // e_phoff
  put(52, kEhdr, 2);                  // e_ehsize
  put(54, kPhdr, 2);                  // e_phentsize
  put(56, 1, 2);                      // e_phnum
  size_t ph = kEhdr;
  put(ph + 0, 1, 4);            // PT_LOAD
  put(ph + 4, 5, 4);            // PF_R | PF_X
  put(ph + 16, kBase, 8);       // p_vaddr
  put(ph + 24, kBase, 8);       // p_paddr
  put(ph + 32, elf.size(), 8);  // p_filesz
  put(ph + 40, elf.size(), 8);  // p_memsz
  put(ph + 48, 0x1000, 8);      // p_align
  memcpy(elf.data() + kEhdr + kPhdr, code, sizeof code);
  return elf;
}

Image BuildImage(const std::string& dir, const ImageShape& shape) {
  Image img;
  img.shape = shape;
  img.bind_targets = BindTargets(shape.binds);
  MkdirP(dir);
  for (int l = 0; l < shape.layers; ++l) {
    // Short names keep the lowerdir option under one page on old kernels.
    std::string root = dir + "/" + std::to_string(l);
    std::string cur = root;
    MkdirP(cur);
    for (int d = 0; d <= shape.depth; ++d) {
      for (int f = 0; f < shape.files_per_dir; ++f) {
        Touch(cur + "/f" + std::to_string(l) + "_" + std::to_string(f));
      }
      if (d == shape.depth) break;
      cur += "/d" + std::to_string(d);
      Check(mkdir(cur.c_str(), 0755), "mkdir", cur);
    }
    img.layer_dirs.push_back(root);
  }
  const std::string& bottom = img.layer_dirs.front();
  img.deep_path = img.DeepDir(shape.depth) + "/target";
  img.missing_path = img.DeepDir(shape.depth) + "/absent";
  Touch(bottom + img.deep_path, "mntscale\n");
  for (const char* d :
       {"/etc", "/bin", "/proc", "/sys", "/dev", "/run", "/run/secrets", "/run/binds", "/tmp"}) {
    MkdirP(bottom + d);
  }
  for (const std::string& t : img.bind_targets) Touch(bottom + t);
  img.static_exe = "/bin/true-static";
  Touch(bottom + img.static_exe, StaticExitElf());
  Check(chmod((bottom + img.static_exe).c_str(), 0755), "chmod", bottom + img.static_exe);
  return img;
}

}  // namespace mntscale
