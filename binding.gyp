# squall's native fabric (DESIGN.md §2): build/Release/squall_fabric.node.
#
# The tcp backend is always built. A libfabric backend (RMA with fi_writedata; a later issue) will join the
# same target when pkg-config finds libfabric: it will set squall_libfabric to
#   '<!(pkg-config --exists libfabric && echo true || echo false)'
# and add its sources under the condition below. Until then the variable stays false.
#
# AddressSanitizer build (for testing only): node-gyp rebuild -- -Dsquall_asan=true
{
  'variables': {
    'squall_libfabric%': 'false',
    'squall_asan%': 'false',
  },
  'targets': [
    {
      'target_name': 'squall_fabric',
      'sources': [
        'native/addon.cc',
        'native/api.cc',
        'native/registry.cc',
        'native/fabric.cc',
        'native/poller.cc',
        'native/handshake.cc',
        'native/connection.cc',
        'native/peer.cc',
        'native/send_queue.cc',
        'native/sockets.cc',
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
          'cflags_cc': ['<!@(pkg-config --cflags libfabric)'],
          'libraries': ['<!@(pkg-config --libs libfabric)'],
        }],
      ],
    },
  ],
}
