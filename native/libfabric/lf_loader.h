// libfabric, opened when the first libfabric fabric starts rather than when the addon loads. Linking it
// would make every process that loads the addon open libfabric and the provider libraries it pulls in —
// about 200 ms here — the tcp backend's processes included. The backend calls the five functions
// libfabric exports through this table (everything else in its API is inline, through the objects' ops).

#pragma once

#include <rdma/fabric.h>

namespace squall::lf {

struct Api {
  int (*getinfo)(uint32_t version, const char* node, const char* service, uint64_t flags, const fi_info* hints,
                 fi_info** info);
  void (*freeinfo)(fi_info* info);
  fi_info* (*dupinfo)(const fi_info* info);
  int (*fabric)(fi_fabric_attr* attr, fid_fabric** fabric, void* context);
  const char* (*strerror)(int errnum);
};

// Opens libfabric once (thread-safe); nullptr when it cannot be opened or lacks a function.
const Api* load();

// The table; only after load() returned it.
const Api& api();

}  // namespace squall::lf
