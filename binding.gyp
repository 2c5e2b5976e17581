# squall's native fabric (DESIGN.md §2): build/Release/squall_fabric.node.
#
# Two backends behind one interface (native/backend.h). The tcp backend (native/tcp/) is always built. The
# libfabric backend (native/libfabric/, docs/rdma.md) joins the same target when pkg-config finds libfabric
# (Debian: apt-get install libfabric-dev pkg-config); without it the addon builds the tcp backend alone and
# selecting 'libfabric' fails with NativeUnavailableError.
# Force it off with: node-gyp rebuild -- -Dsquall_libfabric=false
#
# AddressSanitizer build (for testing only): node-gyp rebuild -- -Dsquall_asan=true
{
  'variables': {
    'squall_libfabric%': '<!(pkg-config --exists libfabric 2>/dev/null && echo true || echo false)',
    'squall_asan%': 'false',
  },
  'targets': [
    {
      'target_name': 'squall_fabric',
      'sources': [
        'native/addon.cc',
        'native/api.cc',
        'native/api_stats.cc',
        'native/registry.cc',
        'native/backend.cc',
        'native/receiver.cc',
        'native/sockets.cc',
        'native/sha256.cc',
        'native/tcp/tcp_backend.cc',
        'native/tcp/poller.cc',
        'native/tcp/handshake.cc',
        'native/tcp/connection.cc',
        'native/tcp/peer.cc',
        'native/tcp/send_queue.cc',
      ],
      'include_dirs': [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        'native',
      ],
      'defines': ['NAPI_DISABLE_CPP_EXCEPTIONS', 'NAPI_VERSION=8'],
      # Node's defaults are -O3 and -fno-exceptions. We want -O2, and C++ exceptions on inside the addon
      # (std::bad_alloc must be catchable: every export catches, none lets one cross into Node-API).
      'cflags!': ['-O3', '-fno-exceptions'],
      'cflags_cc!': ['-O3', '-fno-exceptions', '-std=gnu++17'],
      'cflags': ['-O2', '-Wall', '-Wextra'],
      'cflags_cc': ['-std=c++17', '-O2', '-Wall', '-Wextra', '-fexceptions'],
      'libraries': ['-lpthread'],
      'conditions': [
        ['squall_asan=="true"', {
          'cflags': ['-fsanitize=address', '-fno-omit-frame-pointer', '-g'],
          'cflags_cc': ['-fsanitize=address', '-fno-omit-frame-pointer', '-g'],
          'ldflags': ['-fsanitize=address'],
        }],
        ['squall_libfabric=="true"', {
          'defines': ['SQUALL_WITH_LIBFABRIC'],
          'sources': [
            'native/libfabric/lf_fabric.cc',
            'native/libfabric/lf_domain.cc',
            'native/libfabric/lf_send.cc',
            'native/libfabric/lf_poller.cc',
            'native/libfabric/lf_rdm.cc',
            'native/libfabric/lf_receive.cc',
            'native/libfabric/lf_handshake.cc',
            'native/libfabric/lf_loader.cc',
          ],
          'cflags_cc': ['<!@(pkg-config --cflags libfabric)'],
          # Not linked: lf_loader.cc opens libfabric.so.1 when the first libfabric fabric starts.
          'libraries': ['-ldl'],
        }],
      ],
    },
  ],
}
