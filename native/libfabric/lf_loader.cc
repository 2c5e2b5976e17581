// See lf_loader.h.

#include "libfabric/lf_loader.h"

#include <dlfcn.h>

#include <mutex>

namespace squall::lf {
namespace {

Api table{};
const Api* loaded = nullptr;
std::once_flag once;

template <typename F>
bool resolve(void* lib, const char* name, F& out) {
  out = reinterpret_cast<F>(dlsym(lib, name));
  return out != nullptr;
}

void open() {
  void* lib = dlopen("libfabric.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return;
  if (resolve(lib, "fi_getinfo", table.getinfo) && resolve(lib, "fi_freeinfo", table.freeinfo) &&
      resolve(lib, "fi_dupinfo", table.dupinfo) && resolve(lib, "fi_fabric", table.fabric) &&
      resolve(lib, "fi_strerror", table.strerror)) {
    loaded = &table;
  }
  // A library that lacks a function stays open: closing a library whose constructors ran is not safe.
}

}  // namespace

const Api* load() {
  std::call_once(once, open);
  return loaded;
}

const Api& api() { return table; }

}  // namespace squall::lf
