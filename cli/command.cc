#include "command.h"

#include "mntscale/sys/sys.h"

namespace mntscale {

nlohmann::json CommandLineRecord(const CLI::App& cmd, int argc, char** argv) {
  nlohmann::json opts = nlohmann::json::object();
  for (const CLI::Option* opt : cmd.get_options()) {
    if (opt->count() && !opt->get_lnames().empty())
      opts[opt->get_lnames()[0]] = opt->as<std::vector<std::string>>();
  }
  return {{"argv", std::vector<std::string>(argv, argv + argc)}, {"options", opts}};
}

void RejectEmptyValues(const CLI::App& cmd) {
  for (const CLI::Option* opt : cmd.get_options()) {
    if (!opt->count() || opt->get_expected_min() == 0) continue;  // flags take no value
    for (const std::string& v : opt->results()) {
      if (v.empty()) throw UsageError(opt->get_name() + " has an empty value");
    }
  }
}

std::function<bool(const char*)> Given(const CLI::App& cmd) {
  return [&cmd](const char* opt) {
    const CLI::Option* o = cmd.get_option_no_throw(opt);
    return o && o->count() > 0;
  };
}

}  // namespace mntscale
